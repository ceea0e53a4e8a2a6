"""HumanEval+ and MBPP+ (Liu et al., 2023, the EvalPlus project): the same problems, far more tests.

HumanEval's problems carry 7.7 tests each on average and MBPP's three, few enough that a wrong
solution can pass. EvalPlus kept the problems and generated inputs by the hundred (80 times
HumanEval's tests, 35 times MBPP's); a completion is correct when, on every input, it returns
what the reference solution returns. Papers and leaderboards now report both beside the
originals.

The problems come from the ``evalplus`` package's own loaders, which download its release files
from GitHub (``HumanEvalPlus-v0.1.10.jsonl``, ``MbppPlus-v0.2.0.jsonl``) into its cache; a local
file in the same format can stand in (``path=``, or evalplus's ``HUMANEVAL_OVERRIDE_PATH`` and
``MBPP_OVERRIDE_PATH``). The default profile runs offline, so chapter 6 only says these need
the network; ``phi1 eval humaneval+`` runs them wherever GitHub is reachable.

Grading differs from EvalPlus's own in one way that matters: the reference outputs never enter
the sandbox. The reference solution and the completion each run there on the inputs and send
back their return values as data (the sandbox's ``values.py`` format, the one its split tests
use); this process compares them, with the
tolerance and the special cases EvalPlus applies. A program can write anything it likes on its
output, but it cannot see the answers it would have to forge. Introduced in chapter 6.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from phi1lib.evaluation.mbpp import MBPP_STOPS
from phi1lib.evaluation.problems import (
    FUNCTION_BODY_STOPS,
    Problem,
    ProblemFormatError,
    function_docstring,
)
from phi1lib.sandbox.values import decode, encode

PLUS_BENCHMARKS = ("humaneval+", "mbpp+")
PLUS_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input")
# EvalPlus's time allowance: four times the reference solution's time, and never under 1 s.
TIME_FACTOR = 4.0
MIN_TIME_S = 1.0
# Room for every output of a program: the sandbox keeps this much of its stdout.
OUTPUT_BYTES = 32 * 1024 * 1024


class PlusUnavailable(RuntimeError):
    """The evalplus package or its data could not be had (not installed, or offline)."""


def _evalplus_module(benchmark: str):
    try:
        if benchmark == "humaneval+":
            import evalplus.data.humaneval as module
        else:
            import evalplus.data.mbpp as module
    except ImportError as error:
        raise PlusUnavailable(
            f"{benchmark} is read by the evalplus package, which is not installed here "
            f"({error}); `make install` installs it"
        ) from error
    return module


@contextlib.contextmanager
def _override(module, attribute: str, path: Path | None) -> Iterator[None]:
    """Point evalplus's loader at a local file, as its own override variable would."""
    if path is None:
        yield
        return
    before = getattr(module, attribute)
    setattr(module, attribute, str(path))
    try:
        yield
    finally:
        setattr(module, attribute, before)


def plus_records(benchmark: str, path: Path | None = None) -> dict[str, dict[str, Any]]:
    """EvalPlus's records by task_id, through its loaders (``path``: a local file instead)."""
    if benchmark not in PLUS_BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; known: {', '.join(PLUS_BENCHMARKS)}")
    if path is not None and not Path(path).is_file():
        raise FileNotFoundError(f"no {benchmark} data file (EvalPlus format) at {path}")
    module = _evalplus_module(benchmark)
    attribute, load = (
        ("HUMANEVAL_OVERRIDE_PATH", module.get_human_eval_plus)
        if benchmark == "humaneval+"
        else ("MBPP_OVERRIDE_PATH", module.get_mbpp_plus)
    )
    try:
        with _override(module, attribute, path):
            # A local file may hold a few problems; the release must hold every field.
            return load(err_incomplete=path is None)
    except (OSError, ValueError) as error:
        if path is not None:
            raise ProblemFormatError(f"{path}: not an EvalPlus file ({error})") from error
        raise PlusUnavailable(
            f"{benchmark} is downloaded by evalplus from github.com/evalplus; this machine "
            f"could not fetch it ({type(error).__name__}: {error}). Run it where GitHub is "
            "reachable, or give a local copy of the release file."
        ) from error


def problem_from_plus_record(benchmark: str, record: Mapping[str, Any], *, where: str) -> Problem:
    """One EvalPlus record as a Problem whose test is its inputs (harness ``"outputs"``)."""
    missing = [field for field in PLUS_FIELDS if field not in record]
    if missing:
        raise ProblemFormatError(f"{where}: missing field(s) {', '.join(missing)}")
    base, plus = list(record["base_input"]), list(record["plus_input"])
    if not all(isinstance(args, list | tuple) for args in base + plus):
        raise ProblemFormatError(f"{where}: every input must be a list of arguments")
    entry_point = str(record["entry_point"])
    prompt = str(record["prompt"])
    description = function_docstring(prompt + "    pass\n", entry_point) or prompt.strip('"\n ')
    return Problem(
        benchmark=benchmark,
        task_id=str(record["task_id"]),
        prompt=prompt,
        canonical_solution=str(record["canonical_solution"]),
        test=json.dumps([encode(list(args)) for args in base + plus]),
        entry_point=entry_point,
        description=description,
        harness="outputs",
        stop_sequences=MBPP_STOPS if benchmark == "mbpp+" else FUNCTION_BODY_STOPS,
        base_inputs=len(base),
        atol=float(record.get("atol") or 0.0),
    )


def load_plus(benchmark: str, limit: int | None = None, path: Path | None = None) -> list[Problem]:
    """The problems of ``humaneval+`` or ``mbpp+`` in task order (``path``: a local file)."""
    records = plus_records(benchmark, path)
    where = str(path) if path is not None else benchmark
    problems = [
        problem_from_plus_record(benchmark, record, where=f"{where} {task_id}")
        for task_id, record in records.items()
    ]
    problems.sort(key=lambda problem: int(problem.task_id.rsplit("/", 1)[1]))
    return problems[:limit] if limit is not None else problems


def outputs_program(code: str, problem: Problem, nonce: str) -> str:
    """``code`` followed by a harness that calls the entry point on every input.

    Each result goes to the original stdout as one line, ``nonce`` then JSON; whatever the
    function prints itself is swallowed. Nothing of the expected outputs is in the program. For
    the MBPP+ problems whose answers EvalPlus only checks for being ``None`` (a regex match
    object, say), a result that is not a bool is sent as ``result is not None``, as EvalPlus
    compares them.
    """
    not_none = problem.benchmark == "mbpp+" and problem.entry_point in _not_none_tasks()
    return (
        f"{code}\n\n\n"
        "def _plus_main(entry_point, nonce, payload, not_none):\n"
        "    import io, json, os, sys\n"
        "    from phi1lib.sandbox.values import decode, encode\n"
        "    function = globals()[entry_point]\n"
        "    channel = os.dup(1)\n"
        "    for index, raw in enumerate(json.loads(payload)):\n"
        "        sys.stdout = io.StringIO()\n"
        "        try:\n"
        "            value = function(*decode(raw))\n"
        "            if not_none and not isinstance(value, bool):\n"
        "                value = value is not None\n"
        "            line = json.dumps({'i': index, 'value': encode(value)})\n"
        "        except BaseException as error:\n"
        "            line = json.dumps({'i': index, 'error': type(error).__name__})\n"
        "        finally:\n"
        "            sys.stdout = sys.__stdout__\n"
        "        os.write(channel, (nonce + line + '\\n').encode())\n\n\n"
        f"_plus_main({problem.entry_point!r}, {nonce!r}, {problem.test!r}, {not_none!r})\n"
    )


def read_outputs(stdout: str, nonce: str, count: int) -> list[tuple[bool, Any]]:
    """``(returned, value)`` per input from a program's output: the first line for each index.

    An input with no line (the program stopped before it) or an exception is ``(False, name)``.
    """
    found: dict[int, tuple[bool, Any]] = {}
    for line in stdout.splitlines():
        if not line.startswith(nonce):
            continue
        try:
            record = json.loads(line[len(nonce) :])
            index = int(record["i"])
        except (ValueError, KeyError, TypeError):
            continue
        if index in found or not 0 <= index < count:
            continue
        if "value" in record:
            try:
                found[index] = (True, decode(record["value"]))
            except (TypeError, ValueError, KeyError, IndexError):
                found[index] = (False, "undecodable")
        else:
            found[index] = (False, str(record.get("error")))
    return [found.get(index, (False, "no output")) for index in range(count)]


def _is_floats(value: Any) -> bool:
    if isinstance(value, float):
        return True
    return (
        isinstance(value, list | tuple) and bool(value) and all(isinstance(v, float) for v in value)
    )


def _close(out: Any, expected: Any, atol: float) -> bool:
    import numpy as np

    try:
        if type(out) is not type(expected):
            return False
        if isinstance(expected, list | tuple) and len(out) != len(expected):
            return False
        return bool(np.allclose(out, expected, rtol=1e-07, atol=atol))
    except (TypeError, ValueError):
        return False


def output_matches(problem: Problem, args: Sequence[Any], out: Any, expected: Any) -> bool:
    """EvalPlus's verdict on one input, decided here on data (its ``unsafe_execute``).

    Exact equality, with its special oracles for problems whose answer is not unique (a root of
    HumanEval/32's polynomial, MBPP problems compared as sets, or only as "not None"), and an
    absolute tolerance for floats (the record's ``atol``; 1e-6 when it is 0).
    """
    from evalplus.eval import _special_oracle as oracle  # EvalPlus's own special cases

    atol = problem.atol
    name = problem.entry_point
    try:
        exact = bool(out == expected)
    except Exception:  # values that cannot even compare
        exact = False
    if problem.benchmark == "humaneval+" and name == "find_zero":
        try:
            return abs(oracle._poly(*args, out)) <= atol
        except (TypeError, ValueError, OverflowError):
            return False
    if problem.benchmark == "mbpp+":
        try:
            if name == "are_equivalent":
                exact = True
            elif name == "sum_div":
                exact = exact or out == 0
            elif name == "surface_Area":
                exact = exact or abs(out - oracle._surface_Area(*args)) <= atol
            elif name == "digit_distance_nums":
                exact = exact or out == oracle._digit_distance_nums(*args)
            elif name in oracle.MBPP_OUTPUT_SET_EQ_TASKS:
                exact = set(out) == set(expected)
            elif name in oracle.MBPP_OUTPUT_NOT_NONE_TASKS:
                exact = out == expected if isinstance(out, bool) else expected == (out is not None)
        except (TypeError, ValueError, OverflowError):
            return False
    if atol == 0 and _is_floats(expected):
        atol = 1e-6
    if not exact and atol != 0:
        return _close(out, expected, atol)
    return exact


def _time_limit(reference_s: float, floor_s: float) -> float:
    return max(floor_s, MIN_TIME_S, floor_s + TIME_FACTOR * reference_s)


def grade_outputs(
    problems: Sequence[Problem],
    jobs: Sequence[tuple[int, str]],
    *,
    limits,
    workers: int,
    progress: bool,
) -> list[dict[str, Any]]:
    """Verdicts of ``(problem index, completion)`` jobs on ``"outputs"`` problems.

    First the reference solutions run (once per problem) to give the expected outputs and
    their time; then the completions, each with four times that time. Every verdict is decided
    in this process. Returns one dict per job: ``status``, ``passed``, ``base_passed``,
    ``message``, ``duration_s``, ``stderr_tail``.
    """
    from dataclasses import replace

    from phi1lib.sandbox import SandboxLimits, run_programs

    limits = limits or SandboxLimits()
    wide = replace(limits, tail_bytes=max(limits.tail_bytes, OUTPUT_BYTES))
    needed = sorted({index for index, _ in jobs})
    nonce = f"#plus-{secrets.token_hex(8)}#"
    counts = {i: len(json.loads(problems[i].test)) for i in needed}
    references = run_programs(
        [outputs_program(problems[i].reference_code(), problems[i], nonce) for i in needed],
        limits=wide,
        workers=workers,
        progress=progress,
    )
    expected: dict[int, list[tuple[bool, Any]]] = {}
    budget: dict[int, float] = {}
    for i, outcome in zip(needed, references, strict=True):
        outputs = read_outputs(outcome.stdout_tail, nonce, counts[i])
        if outcome.status != "passed" or not all(ok for ok, _ in outputs):
            raise ProblemFormatError(
                f"{problems[i].task_id}: the reference solution does not run on every input "
                f"({outcome.status}: {outcome.message})"
            )
        expected[i] = outputs
        budget[i] = _time_limit(float(outcome.duration_s), limits.timeout_s)
    per_problem: dict[int, list[int]] = {}
    for position, (i, _) in enumerate(jobs):
        per_problem.setdefault(i, []).append(position)
    verdicts: list[dict[str, Any] | None] = [None] * len(jobs)
    # One batch per time allowance keeps the pool's single-limit interface.
    for allowance in sorted(set(budget.values())):
        batch = [
            p for i, positions in per_problem.items() if budget[i] == allowance for p in positions
        ]
        run_limits = replace(wide, timeout_s=allowance)
        outcomes = run_programs(
            [
                outputs_program(
                    problems[jobs[p][0]].prompt + jobs[p][1], problems[jobs[p][0]], nonce
                )
                for p in batch
            ],
            limits=run_limits,
            workers=workers,
            progress=progress,
        )
        for position, outcome in zip(batch, outcomes, strict=True):
            verdicts[position] = _verdict(
                problems[jobs[position][0]], expected[jobs[position][0]], outcome, nonce
            )
    return [verdict for verdict in verdicts if verdict is not None]


def _not_none_tasks() -> list[str]:
    from evalplus.eval._special_oracle import MBPP_OUTPUT_NOT_NONE_TASKS

    return list(MBPP_OUTPUT_NOT_NONE_TASKS)


def _verdict(
    problem: Problem, expected: list[tuple[bool, Any]], outcome, nonce: str
) -> dict[str, Any]:
    inputs = [decode(raw) for raw in json.loads(problem.test)]
    outputs = read_outputs(outcome.stdout_tail, nonce, len(inputs))
    matched = [
        returned and output_matches(problem, args, value, want)
        for args, (returned, value), (_, want) in zip(inputs, outputs, expected, strict=True)
    ]
    base_passed = all(matched[: problem.base_inputs])
    passed = all(matched)
    if passed:
        status, message = "passed", f"all {len(matched)} outputs match the reference"
    else:
        first = matched.index(False)
        returned, value = outputs[first]
        where = "base" if first < problem.base_inputs else "plus"
        status = outcome.status if outcome.status in ("timeout", "crashed") else "failed"
        reason = f"raised {value}" if not returned else "returned a different value"
        message = (
            f"input {first} ({where}) {reason}; {sum(matched)} of {len(matched)} outputs match"
        )
    return {
        "status": status,
        "passed": passed,
        "base_passed": base_passed,
        "message": message,
        "duration_s": round(float(outcome.duration_s), 4),
        "stderr_tail": outcome.stderr_tail or "",
    }


def plus_availability(profile) -> str:
    """One sentence for chapter 6: whether this profile's evaluation runs HumanEval+ and MBPP+."""
    if profile.eval.plus:
        return (
            f"Profile {profile.name!r} runs HumanEval+ and MBPP+ in the evaluate stage "
            "(eval.plus = true): their pass@1 sits beside HumanEval's and MBPP's below."
        )
    return (
        f"Profile {profile.name!r} does not run HumanEval+ or MBPP+ (eval.plus = false): the "
        "evalplus package downloads their tests from GitHub, and this profile runs offline. "
        "Where GitHub is reachable: `phi1 eval humaneval+ --model DIR` (or mbpp+), or "
        'PHI1_SET="eval.plus=true" for the whole stage.'
    )
