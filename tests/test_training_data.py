"""Tokenizer, packing, the batch plan, the schedule and the metrics log (chapter 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from phi1lib.settings import load_settings
from phi1lib.training.batches import BatchPlan
from phi1lib.training.loop import TrainSettings, learning_rate_factor
from phi1lib.training.metrics import MetricsLog, read_metrics
from phi1lib.training.packing import (
    IGNORE_INDEX,
    PackedSequences,
    heldout_document,
    one_per_sequence_cost,
    write_exercise_file,
    write_token_file,
)
from phi1lib.training.tokenizer import EOS_TOKEN, bytes_per_token, train_bpe_tokenizer

DOCUMENTS = [
    f'def add_{i}(x):\n    """Return x plus {i}."""\n    return x + {i}\n\n\nprint(add_{i}(2))\n'
    for i in range(60)
] + ["# Lists\n\nA list keeps items in order: `[1, 2, 3]`. Ünïcödé → ok ✓\n"] * 5


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(DOCUMENTS, vocab_size=400)


def test_bpe_tokenizer_round_trips_and_knows_end_of_text(tokenizer, tmp_path):
    assert len(tokenizer) <= 400
    assert tokenizer.eos_token == EOS_TOKEN and tokenizer.pad_token == EOS_TOKEN
    for text in (DOCUMENTS[3], DOCUMENTS[-1], "x = '🙂'\n\tif a:\n        pass"):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text  # byte-level: nothing is lost, no unknown token
    tokenizer.save_pretrained(tmp_path / "tok")
    again = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert again(DOCUMENTS[0])["input_ids"] == tokenizer(DOCUMENTS[0])["input_ids"]
    assert again.eos_token_id == tokenizer.eos_token_id
    # merges learnt from code compress it, though every run of spaces is a token of its own
    assert bytes_per_token(tokenizer, DOCUMENTS[:10]) > 1.7


def test_a_prompt_ending_in_a_newline_ends_on_a_token_boundary(tokenizer):
    # the model must see the same tokens for the prompt whether or not the body follows
    prompt = 'def add_7(x):\n    """Return x plus 7."""\n'
    body = "    return x + 7\n"
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert encode(prompt + body) == encode(prompt) + encode(body)


def test_a_name_has_the_same_tokens_after_a_bracket_and_after_a_space(tokenizer):
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    for name in ("add_7", "spare_values", "xq_zz"):  # known, partly known, unknown pieces
        assert encode(f"f({name}") == encode("f(") + encode(name)
        assert encode(f"return {name}") == encode("return ") + encode(name)


EXERCISES = [
    (
        f'def add_{i}(x):\n    """Return x plus {i}."""\n',
        f'def add_{i}(x):\n    """Return x plus {i}."""\n    return x + {i}\n',
    )
    for i in range(12)
]


def test_exercises_are_packed_whole_with_the_loss_on_their_solutions(tokenizer, tmp_path):
    path = tmp_path / "ex.bin"
    info = write_exercise_file(EXERCISES, tokenizer, path, seq_len=48, loss_on="solution")
    data = PackedSequences(path, 48)
    assert info.aligned_to == 48 and info.tokens == len(data) * 48 and info.truncated == 0
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    lengths = [len(encode(text)) + 1 for _, text in EXERCISES]
    solutions = [n - len(encode(prompt)) for n, (prompt, _) in zip(lengths, EXERCISES, strict=True)]
    ids, labels = data.batch(range(len(data)))
    rows = [row[row != tokenizer.eos_token_id].tolist() for row in ids]
    # every exercise lies inside one row, in order: rows hold whole exercises and padding
    assert "".join(tokenizer.decode(r) for r in rows) == "".join(text for _, text in EXERCISES)
    assert sum(row.count(tokenizer.eos_token_id) for row in ids.tolist()) >= len(EXERCISES)
    targets = labels[labels != IGNORE_INDEX]
    assert len(targets) == sum(solutions)  # solution tokens and each end-of-text, no prompt
    assert data.targets_in(range(len(data))) == sum(solutions)  # none starts a row
    assert data.padding_in(range(len(data))) == info.tokens - sum(lengths)
    decoded = tokenizer.decode(labels[0][labels[0] != IGNORE_INDEX])
    assert decoded.startswith("    return x + 0\n") and "Return x plus" not in decoded


def test_whole_packing_cuts_an_overlong_exercise_and_can_predict_everything(tokenizer, tmp_path):
    long = (EXERCISES[0][0], EXERCISES[0][0] + "    y = 1\n" * 40 + "    return x\n")
    info = write_exercise_file(
        [long, *EXERCISES[:3]], tokenizer, tmp_path / "ex.bin", seq_len=48, loss_on="all"
    )
    data = PackedSequences(tmp_path / "ex.bin", 48)
    assert info.truncated == 1
    _, labels = data.batch([1])
    assert (labels[0][:10] != IGNORE_INDEX).all()  # prompts are predicted too
    with pytest.raises(ValueError, match="rows of 48"):
        PackedSequences(tmp_path / "ex.bin", 64)
    with pytest.raises(ValueError, match="loss_on"):
        write_exercise_file(EXERCISES, tokenizer, tmp_path / "x.bin", seq_len=48, loss_on="body")


def test_too_small_vocabulary_is_refused():
    with pytest.raises(ValueError, match="too small"):
        train_bpe_tokenizer(DOCUMENTS, vocab_size=100)


def test_packing_joins_documents_with_end_of_text(tokenizer, tmp_path):
    path = tmp_path / "train.bin"
    info = write_token_file(DOCUMENTS, tokenizer, path, batch_size=7)
    lengths = [len(tokenizer(d, add_special_tokens=False)["input_ids"]) + 1 for d in DOCUMENTS]
    assert info.tokens == sum(lengths) and info.documents == len(DOCUMENTS)
    assert info.dtype == "uint16"
    raw = np.fromfile(path, dtype=np.uint16)
    assert (raw == tokenizer.eos_token_id).sum() == len(DOCUMENTS)
    assert raw[lengths[0] - 1] == tokenizer.eos_token_id

    data = PackedSequences(path, seq_len=32)
    assert len(data) == -(-info.tokens // 32)
    input_ids, labels = data.batch([0, 1])
    assert input_ids.dtype == torch.int64 and input_ids.shape == (2, 32)
    assert torch.equal(input_ids[1], torch.from_numpy(raw[32:64].astype(np.int64)))
    assert torch.equal(input_ids, labels)  # full sequences: every token is a target
    last = len(data) - 1
    tail = data.length_of(last)
    ids, labels = data.batch([last])
    assert (labels[0, tail:] == IGNORE_INDEX).all() and (labels[0, :tail] != IGNORE_INDEX).all()
    assert data.padding_in([0, last]) == 32 - tail
    assert data.targets_in([0, last]) == 31 + tail - 1
    with pytest.raises(IndexError, match="outside"):
        data.batch([len(data)])


def test_a_truncated_token_file_is_named(tokenizer, tmp_path):
    path = tmp_path / "train.bin"
    write_token_file(DOCUMENTS, tokenizer, path)
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - 10)
    with pytest.raises(ValueError, match="interrupted write"):
        PackedSequences(path, seq_len=16)


def test_heldout_split_is_decided_by_the_text():
    texts = [f"document {i}" for i in range(4000)]
    held = [heldout_document(t, 0.05) for t in texts]
    assert 0.035 < sum(held) / len(held) < 0.065
    assert held == [heldout_document(t, 0.05) for t in texts]  # stable across calls and corpora
    assert not any(heldout_document(t, 0.0) for t in texts)


def test_one_sequence_per_document_wastes_positions_or_tokens():
    # exercises of 50-150 tokens, one per 256-token sequence, would be mostly padding
    cost = one_per_sequence_cost([50, 100, 150], 256)
    assert cost["padding"] == pytest.approx(1 - 300 / 768) and cost["truncated"] == 0
    # a document longer than the sequence loses its tail
    cost = one_per_sequence_cost([100, 300], 200)
    assert cost["padding"] == pytest.approx(0.25) and cost["truncated"] == pytest.approx(0.25)


def test_batch_plan_splits_the_global_batch_exactly():
    single = BatchPlan(num_sequences=50, global_batch=8, micro_batch=8, world_size=1, seed=1)
    split = BatchPlan(num_sequences=50, global_batch=8, micro_batch=2, world_size=2, seed=1)
    assert split.accumulation == 2
    for step in range(20):
        pieces = [split.micro_indices(step, r, m) for m in range(2) for r in range(2)]
        joined = np.concatenate(pieces)
        assert sorted(joined) == sorted(single.micro_indices(step, 0, 0))
        if step < 6:  # a step inside one epoch reads no sequence twice
            assert len(set(joined)) == 8
    # every sequence is visited once per epoch, in a new order each epoch
    epoch = np.concatenate([single.global_indices(s) for s in range(7)])[:50]
    assert sorted(epoch) == list(range(50))
    second = np.concatenate([single.global_indices(s) for s in range(6, 13)])[2:52]
    assert sorted(second) == list(range(50)) and list(second) != list(epoch)
    assert single.epochs_at(25) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="not a multiple"):
        BatchPlan(num_sequences=50, global_batch=8, micro_batch=3)


def test_schedule_warms_up_then_decays_linearly():
    factors = [learning_rate_factor(s, warmup=10, total=110, min_ratio=0.1) for s in range(110)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(1 - 0.9 * 0.5)
    assert factors[109] == pytest.approx(0.1, abs=0.01)
    assert all(a <= b for a, b in zip(factors[:10], factors[1:10], strict=False))
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))


def test_settings_come_from_a_profile_section():
    from phi1lib.profiles import load_profile

    settings = load_profile("phi-1", use_env=False).pretrain
    assert settings.global_batch == 1024 and settings.seq_len == 2048
    assert settings.lr == 1e-3 and settings.warmup_steps == 750 and settings.weight_decay == 0.1
    assert settings.dropout == 0.1 and settings.precision == "fp16"
    assert settings.tokens_per_step == 1024 * 2048
    # the paper kept step 24k of a run scheduled for 36k, so its rate was far from the floor
    assert settings.steps == 24_000 and settings.planned_steps == 36_000
    last = learning_rate_factor(23_999, warmup=750, total=settings.planned_steps, min_ratio=0.1)
    assert last == pytest.approx(1 - 0.9 * (23_999 - 750) / (36_000 - 750))
    with pytest.raises(ValueError, match="schedule_steps \\(10\\) is shorter than steps"):
        load_profile("tiny", {"pretrain.schedule_steps": 10}, use_env=False).settings("pretrain")
    with pytest.raises(ValueError, match="missing field.s. seq_len"):
        load_settings(TrainSettings, {"steps": 8}, "a test section")
    with pytest.raises(ValueError, match="precision 'fp8'"):
        load_profile("tiny", {"finetune.precision": "fp8"}, use_env=False).settings("finetune")


def test_metrics_log_is_cut_back_on_resume(tmp_path):
    log = MetricsLog(tmp_path, tensorboard=True)
    for step in range(1, 6):
        log.log({"step": step, "tokens": 10 * step, "loss": 1.0 / step, "heldout_loss": None})
    log.close()
    assert list(read_metrics(tmp_path / "metrics.csv")["step"]) == [1, 2, 3, 4, 5]
    assert any((tmp_path / "tensorboard").iterdir())
    resumed = MetricsLog(tmp_path, resume_after_step=3, tensorboard=False)
    resumed.log({"step": 4, "tokens": 40, "loss": 0.2})
    resumed.close()
    frame = read_metrics(tmp_path / "metrics.csv")
    assert list(frame["step"]) == [1, 2, 3, 4] and frame["loss"].iloc[-1] == 0.2
    assert frame["heldout_loss"].isna().all()
    with pytest.raises(KeyError, match="unknown metric"):
        MetricsLog(tmp_path, tensorboard=False).log({"step": 9, "speed": 1})


def test_mfu_column_is_recomputed_against_a_new_ceiling(tmp_path):
    from phi1lib.training.metrics import recompute_mfu

    log = MetricsLog(tmp_path, tensorboard=False)
    log.log({"step": 1, "tokens": 10, "loss": 1.0, "tokens_per_s": 1000.0, "mfu": 0.9})
    log.log({"step": 2, "tokens": 20, "loss": 0.9, "tokens_per_s": 2000.0, "mfu": 0.9})
    log.log({"step": 3, "tokens": 30, "loss": 0.8})  # no speed logged: no MFU either
    log.close()
    recompute_mfu(tmp_path / "metrics.csv", flops_per_token=1e6, peak_flops=4e9)
    frame = read_metrics(tmp_path / "metrics.csv")
    assert list(frame["mfu"].iloc[:2]) == [0.25, 0.5] and frame["mfu"].isna().iloc[2]
    assert list(frame["loss"]) == [1.0, 0.9, 0.8]


def test_heldout_samples_are_spread_over_the_file():
    from phi1lib.training.heldout import spread_indices

    assert spread_indices(10, None) == list(range(10))
    assert spread_indices(10, 20) == list(range(10))
    chosen = spread_indices(337, 64)
    assert len(chosen) == 64 and chosen[0] == 0 and chosen[-1] == 336
