"""MBPP (Austin et al., 2021): 974 crowd-sourced Python problems, 500 of them the test split.

The problems travel with the book: ``data/mbpp/`` beside this module holds Google Research's
``mbpp.jsonl`` and ``sanitized-mbpp.json`` (gzipped, byte-identical once decompressed, CC BY
4.0; its README gives their provenance and checksums). $PHI1_MBPP_DIR points at another folder
holding ``mbpp.jsonl`` (plain or gzipped). Online, ``source=MBPP_HUB_ID`` (or that id in
$PHI1_MBPP_DIR) reads the Hugging Face hub dataset ``google-research-datasets/mbpp``, whose
records have the same fields. The standard splits are by task_id: prompt 1-10, test 11-510,
validation 511-600, train 601-974; the sanitized subset (427 hand-checked problems) keeps the
same groupings.

The prompt follows the format of the MBPP paper as the bigcode evaluation harness implements it
(after InCoder): a docstring holding the task description and the first of the three tests,

    \"\"\"
    Write a function to find the similar elements from the given two tuple lists.
    assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)
    \"\"\"

after which the model writes the whole function; all three tests are then run (the
``challenge_test_list`` is not used, as in the standard evaluation). Showing one test tells the
model the function's name and signature, which the description alone does not.
Introduced in chapter 6 ("Three benchmarks").
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from phi1lib.evaluation.problems import Problem, ProblemFormatError, read_jsonl

MBPP_DIR_ENV = "PHI1_MBPP_DIR"
MBPP_HUB_ID = "google-research-datasets/mbpp"
MBPP_PACKAGED_DIR = Path(__file__).with_name("data") / "mbpp"
MBPP_FILE = "mbpp.jsonl"
MBPP_SANITIZED_FILE = "sanitized-mbpp.json"
MBPP_VARIANTS = ("full", "sanitized")  # the hub's two configurations
MBPP_SPLITS = {
    "prompt": range(1, 11),
    "test": range(11, 511),
    "validation": range(511, 601),
    "train": range(601, 975),
}
# The bigcode harness's MBPP stop words: the model writes a whole function, so a new top-level
# def is allowed (helpers), but a test, a print or a closing docstring ends the answer.
MBPP_STOPS = ("\nclass ", "\nassert ", '\n"""', "\nprint(", "\nif ", "\n```")
MBPP_FIELDS = ("task_id", "text", "code", "test_list")


def default_mbpp_source() -> str:
    """Where MBPP is read from: $PHI1_MBPP_DIR when set, else the copy that ships with the book."""
    return os.environ.get(MBPP_DIR_ENV) or str(MBPP_PACKAGED_DIR)


def _local_file(folder: Path, name: str) -> Path | None:
    """``name`` in ``folder``, plain or gzipped (the bundled copy is gzipped)."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_sanitized_records(path: Path) -> list[dict[str, Any]]:
    """The records of ``sanitized-mbpp.json`` (one JSON array), in the full set's field names.

    The sanitized set calls the statement ``prompt`` and lists imports the tests need in
    ``test_imports``; they become ``text`` and ``test_setup_code`` so one record parser serves
    both variants.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        try:
            records = json.load(handle)
        except json.JSONDecodeError as error:
            raise ProblemFormatError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ProblemFormatError(f"{path}: expected a JSON array of objects")
    return [_full_field_names(record) for record in records]


def _full_field_names(record: Mapping[str, Any]) -> dict[str, Any]:
    """A sanitized record (file or hub) with the full set's field names."""
    renamed = dict(record)
    if "prompt" in renamed and "text" not in renamed:
        renamed["text"] = renamed.pop("prompt")
    if "test_imports" in renamed and "test_setup_code" not in renamed:
        renamed["test_setup_code"] = "\n".join(renamed.pop("test_imports") or [])
    return renamed


def mbpp_prompt(text: str, first_test: str) -> str:
    """The MBPP prompt: the task and one example test in a module docstring (chapter 6)."""
    return f'"""\n{text.strip()}\n{first_test.strip()}\n"""\n'


def _entry_point(code: str, tests: list[str], where: str) -> str:
    """The function under test: the top-level function of the solution that the tests call."""
    try:
        with warnings.catch_warnings():  # old MBPP code has invalid escapes such as "\d"
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except SyntaxError as error:
        raise ProblemFormatError(f"{where}: reference code does not parse ({error})") from error
    defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    called = set(re.findall(r"([A-Za-z_]\w*)\s*\(", " ".join(tests)))
    for name in defined:
        if name in called:
            return name
    raise ProblemFormatError(f"{where}: no function of the reference code is called by its tests")


def problem_from_mbpp_record(record: Mapping[str, Any], *, where: str) -> Problem:
    """Check one MBPP record (jsonl or hub format, ``where`` names it) and wrap it as a Problem."""
    missing = [field for field in MBPP_FIELDS if field not in record]
    if missing:
        raise ProblemFormatError(f"{where}: missing field(s) {', '.join(missing)}")
    tests = list(record["test_list"])
    if not tests or not all(isinstance(test, str) for test in tests):
        raise ProblemFormatError(f"{where}: test_list must be a non-empty list of strings")
    code = str(record["code"]).replace("\r\n", "\n")
    setup = str(record.get("test_setup_code") or "").replace("\r\n", "\n").strip()
    test_code = "\n".join(([setup] if setup else []) + tests)
    return Problem(
        benchmark="mbpp",
        task_id=f"MBPP/{int(record['task_id'])}",
        prompt=mbpp_prompt(record["text"], tests[0]),
        canonical_solution=code.rstrip() + "\n",
        test=test_code,
        entry_point=_entry_point(code, tests, where),
        description=record["text"].strip(),
        harness="asserts",
        stop_sequences=MBPP_STOPS,
    )


def problems_from_mbpp_records(
    records: Iterable[Mapping[str, Any]], split: str, *, where: str
) -> list[Problem]:
    """The problems of ``split`` among ``records``, sorted by task_id (chapter 6)."""
    if split not in MBPP_SPLITS:
        raise ValueError(f"unknown MBPP split {split!r}; known: {', '.join(MBPP_SPLITS)}")
    wanted = MBPP_SPLITS[split]
    problems = [
        problem_from_mbpp_record(record, where=f"{where} task_id {record.get('task_id')}")
        for record in records
        if int(record.get("task_id", -1)) in wanted
    ]
    return sorted(problems, key=lambda problem: int(problem.task_id.split("/")[1]))


def _hub_records(source: str, split: str, variant: str) -> list[dict[str, Any]]:
    """Records in the hub's format: a hub id, or a local folder laid out like the hub repo."""
    import datasets

    local = Path(source)
    if local.is_dir():
        files = sorted(str(path) for path in (local / variant).glob(f"{split}-*.parquet"))
        if not files:
            wanted = MBPP_FILE if variant == "full" else MBPP_SANITIZED_FILE
            raise FileNotFoundError(
                f"{local}: neither {wanted} nor hub-layout files {variant}/{split}-*.parquet"
            )
        dataset = datasets.load_dataset("parquet", data_files={split: files}, split=split)
    else:
        dataset = datasets.load_dataset(source, variant, split=split)
    return [_full_field_names(row) for row in dataset]


def load_mbpp(
    split: str = "test",
    *,
    limit: int | None = None,
    source: str | Path | None = None,
    variant: str = "full",
) -> list[Problem]:
    """MBPP problems of one split, in task_id order, the first ``limit`` of them (chapter 6).

    ``source`` is a folder holding ``mbpp.jsonl`` / ``sanitized-mbpp.json`` (plain or gzipped;
    default: the bundled copy), a folder laid out like the hub repository
    (``full/test-*.parquet``), or a hub dataset id (online; needs the network). ``variant`` picks
    the full set or the hand-checked sanitized subset.
    """
    if variant not in MBPP_VARIANTS:
        raise ValueError(f"unknown MBPP variant {variant!r}; known: {', '.join(MBPP_VARIANTS)}")
    source = str(source if source is not None else default_mbpp_source())
    looks_local = Path(source).is_absolute() or source.startswith((".", "~"))
    if looks_local and not Path(source).expanduser().is_dir():
        raise FileNotFoundError(
            f"MBPP folder {source} does not exist; point ${MBPP_DIR_ENV} at a folder holding "
            f"{MBPP_FILE} (or at the hub id {MBPP_HUB_ID}), or unset it to use the bundled copy"
        )
    source = str(Path(source).expanduser()) if looks_local else source
    wanted = MBPP_FILE if variant == "full" else MBPP_SANITIZED_FILE
    local = _local_file(Path(source), wanted)
    if local is not None:
        if variant == "full":
            records = [record for _, record in read_jsonl(local)]
        else:
            records = read_sanitized_records(local)
        problems = problems_from_mbpp_records(records, split, where=str(local))
    else:
        if split not in MBPP_SPLITS:
            raise ValueError(f"unknown MBPP split {split!r}; known: {', '.join(MBPP_SPLITS)}")
        records = _hub_records(source, split, variant)
        problems = problems_from_mbpp_records(records, split, where=source)
    return problems[:limit] if limit is not None else problems
