"""The offline teacher's procedural content: textbook sections, exercises, mistakes and judge.

Every code example a section shows is executed, every family's solution passes its own tests,
every injected mistake is caught by a test, and the same constraints and seed give the same text,
in this process and in one with a different string-hash seed.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import sysconfig
import textwrap
import warnings
from collections import Counter
from pathlib import Path

import pytest

from phi1lib.synthesis.curriculum import load_curriculum
from phi1lib.synthesis.names import (
    RESERVED,
    TRAIN,
    modifiers,
    strip_modifier,
    variant,
    variants,
)
from phi1lib.synthesis.split import signature_names
from phi1lib.teacher.offline import content
from phi1lib.teacher.offline.content.execution import SnippetTimeout, run_snippet
from phi1lib.teacher.offline.content.exercises import (
    constant_options,
    exercise_names,
    infamily_families,
    load_families,
)
from phi1lib.teacher.offline.content.library import load_library, normalise_name, subtopics
from phi1lib.teacher.offline.content.mistakes import fails_a_test
from phi1lib.teacher.offline.coverage import curriculum_gaps

CURRICULUM = load_curriculum()
CODE_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
OUTPUT_BLOCK = re.compile(r"```text\n(.*?)\n```", re.S)
FAMILIES = sorted(load_families())
TOPIC_NAMES = [topic["topic"] for topic in CURRICULUM.topics]


def code_shape(code: str) -> str:
    """The AST of ``code`` with every name, attribute, argument and constant erased."""
    tree = ast.parse(code)
    for node in ast.walk(tree):
        for field in ("id", "name", "arg", "attr", "module"):
            if isinstance(getattr(node, field, None), str):
                setattr(node, field, "_")
        if isinstance(node, ast.Constant):
            node.value = 0
    return ast.dump(tree, annotate_fields=False)


def sample_constraints(rng: random.Random) -> dict[str, str]:
    topic = rng.choice(CURRICULUM.topics)
    return {
        "topic": topic["topic"],
        "subtopic": rng.choice(topic["subtopics"]),
        "audience": rng.choice(CURRICULUM.audiences),
        "style": rng.choice(CURRICULUM.styles),
    }


# ---- the curriculum the teacher is asked for -------------------------------------------------


def test_the_stand_in_can_write_the_whole_curriculum():
    assert curriculum_gaps() == []


def test_the_stand_in_knows_nothing_the_curriculum_leaves_out():
    """A topic or family added to the stand-in's content and not to the curriculum would never
    be asked for: add it to ``phi1lib/synthesis/curriculum/*.toml`` as well."""
    library = {normalise_name(t["topic"]): subtopics(t) for t in load_library().values()}
    asked = {normalise_name(t["topic"]): t["subtopics"] for t in CURRICULUM.topics}
    assert library == asked
    assert [dict(e) for e in CURRICULUM.exercise_names] == exercise_names()
    assert list(CURRICULUM.infamily_families) == infamily_families()


def test_a_curriculum_beyond_the_stand_in_is_listed():
    wider = dataclasses.replace(
        CURRICULUM,
        topics=(*CURRICULUM.topics, {"topic": "quantum knitting", "subtopics": ["purl"]}),
        styles=(*CURRICULUM.styles, "sonnet"),
        exercise_names=(
            *CURRICULUM.exercise_names,
            {"function_name": "knit", "family": "knit", "topic": "strings", "difficulty": "easy"},
        ),
    )
    assert curriculum_gaps(wider) == [
        "topic 'quantum knitting': not in the concept library",
        "style 'sonnet': no headings for it",
        "exercise name 'knit': no family answers to it",
    ]


def test_curriculum_data_has_the_promised_shape():
    assert len(CURRICULUM.topics) >= 60
    for topic in CURRICULUM.topics:
        assert set(topic) == {"topic", "subtopics", "level"}
        assert len(topic["subtopics"]) >= 2
    assert len(CURRICULUM.audiences) >= 4 and len(CURRICULUM.styles) >= 5
    assert len(FAMILIES) >= 100
    names = [entry["function_name"] for entry in CURRICULUM.exercise_names]
    assert len(names) == len(set(names)) >= 3 * len(FAMILIES)
    for entry in CURRICULUM.exercise_names:
        assert entry["topic"] in TOPIC_NAMES
        assert entry["difficulty"] in ("easy", "medium", "hard")
        assert entry["function_name"].isidentifier()


# ---- textbook sections -----------------------------------------------------------------------


def check_section(text: str, constraints: dict[str, str]) -> None:
    assert text.startswith("## "), text[:80]
    blocks = CODE_BLOCK.findall(text)
    assert blocks, f"no code block in a section for {constraints}"
    for block in blocks:
        code = block.split("\n# Output:\n")[0]
        run = run_snippet(code)
        assert run.ok, f"{constraints}: example fails with {run.error!r}\n{code}"
    prose = CODE_BLOCK.sub("", OUTPUT_BLOCK.sub("", text))
    assert len(prose.split()) >= 60, f"too little prose for {constraints}"


@pytest.mark.parametrize("topic", TOPIC_NAMES)
def test_every_topic_writes_sections_whose_examples_run(topic):
    entry = next(t for t in CURRICULUM.topics if t["topic"] == topic)
    for number, subtopic in enumerate(entry["subtopics"]):
        constraints = {
            "topic": topic,
            "subtopic": subtopic,
            "audience": CURRICULUM.audiences[number % len(CURRICULUM.audiences)],
            "style": CURRICULUM.styles[number % len(CURRICULUM.styles)],
        }
        check_section(content.write_textbook_section(constraints, seed=number), constraints)


def test_random_combinations_of_constraints_write_running_sections():
    rng = random.Random(7)
    for seed in range(60):
        constraints = sample_constraints(rng)
        check_section(content.write_textbook_section(constraints, seed), constraints)


def test_printed_outputs_are_the_real_outputs():
    constraints = {"topic": "lists", "subtopic": "slicing lists", "style": "tutorial"}
    text = content.write_textbook_section(constraints, seed=3)
    code, output = CODE_BLOCK.findall(text)[0], OUTPUT_BLOCK.findall(text)[0]
    assert run_snippet(code).stdout.rstrip("\n") == output


def test_sections_differ_across_audiences_styles_and_seeds():
    base = {"topic": "dictionaries", "subtopic": "updating and counting"}
    by_audience = {
        content.write_textbook_section({**base, "audience": a, "style": "textbook"}, 0)
        for a in CURRICULUM.audiences
    }
    by_style = {
        content.write_textbook_section({**base, "audience": "college student", "style": s}, 0)
        for s in CURRICULUM.styles
    }
    by_seed = {
        content.write_textbook_section({**base, "audience": "young learner", "style": "Q&A"}, s)
        for s in range(5)
    }
    assert len(by_audience) == len(CURRICULUM.audiences)
    assert len(by_style) == len(CURRICULUM.styles)
    assert len(by_seed) == 5
    tutorial = content.write_textbook_section({**base, "style": "tutorial"}, 0)
    assert "### Step 1" in tutorial and "**Q:" not in tutorial
    questions = content.write_textbook_section({**base, "style": "Q&A"}, 0)
    assert "**Q:" in questions


def test_unknown_topic_subtopic_audience_or_style_is_a_clear_error():
    with pytest.raises(ValueError, match="quantum knitting"):
        content.write_textbook_section({"topic": "quantum knitting"}, 0)
    with pytest.raises(ValueError, match="teleportation"):
        content.write_textbook_section({"topic": "lists", "subtopic": "teleportation"}, 0)
    with pytest.raises(ValueError, match="wizard"):
        content.write_textbook_section({"topic": "lists", "audience": "wizard"}, 0)
    with pytest.raises(ValueError, match="topic"):
        content.write_textbook_section({"audience": "young learner"}, 0)
    loose = content.write_textbook_section({"topic": "Binary_Trees", "style": "q&a"}, 0)
    assert "**Q:" in loose


# ---- exercises -------------------------------------------------------------------------------


def run_exercise(exercise: dict) -> list[str]:
    """The tests that fail (empty when the solution passes every test)."""
    namespace = run_snippet(exercise["solution"]).namespace
    return [t for t in exercise["tests"] if not run_snippet(t, namespace=namespace).ok]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_passes_its_own_tests_and_every_mistake_is_caught(family):
    names = load_families()[family].names
    for seed in range(3):
        exercise = content.write_exercise({"function_name": names[seed % len(names)]}, seed)
        assert exercise["family"] == family
        assert 3 <= len(exercise["tests"]) <= 6  # as the code_exercise prompt asks
        assert exercise["solution"].startswith(exercise["signature"])
        function = ast.parse(exercise["solution"]).body[0]
        assert ast.get_docstring(function) == exercise["docstring"]
        assert ">>>" in exercise["docstring"] or "==" in exercise["docstring"]
        assert re.search(r"->", exercise["signature"]) and ": " in exercise["signature"]
        assert not run_exercise(exercise), exercise["solution"]
        broken = content.inject_mistake(exercise, seed)
        assert broken["solution"] != exercise["solution"]
        assert broken["tests"] == exercise["tests"]
        assert broken["mistake"]["kind"] and broken["mistake"]["description"]
        assert fails_a_test(broken["solution"], broken["tests"]), broken["solution"]


def test_exercise_answers_the_requested_name_and_resolves_fuzzy_names():
    exact = content.write_exercise({"function_name": "vowel_count"}, 1)
    assert exact["function_name"] == "vowel_count" and exact["family"] == "count_vowels"
    camel = content.write_exercise({"function_name": "countVowels", "topic": "strings"}, 1)
    assert camel["function_name"] == "countVowels" and camel["family"] == "count_vowels"
    unknown = content.write_exercise(
        {"function_name": "parse_config_file", "topic": "graphs", "difficulty": "hard"}, 2
    )
    assert unknown["function_name"] == "parse_config_file" and unknown["topic"] == "graphs"
    assert not run_exercise(unknown)
    nameless = content.write_exercise({"topic": "dynamic programming"}, 3)
    assert nameless["topic"] == "dynamic programming"
    assert nameless["function_name"] in load_families()[nameless["family"]].names


def test_names_wording_and_values_vary_with_the_seed():
    exercises = [content.write_exercise({"function_name": "caesar_cipher"}, s) for s in range(8)]
    assert len({e["signature"] for e in exercises}) > 1
    assert len({e["docstring"] for e in exercises}) == 8
    assert len({tuple(e["tests"]) for e in exercises}) == 8


def test_reserved_names_ask_for_unseen_names_wordings_and_constants():
    families = load_families()
    assert len(modifiers()) >= 60

    def parameter_pools(exercise):
        names = signature_names(exercise["signature"]) - {exercise["function_name"]}
        bases = {n for p in families[exercise["family"]].params for n in p.names}
        return [(strip_modifier(name, bases) or (name, TRAIN))[1] for name in names]

    for family_id in infamily_families():
        family = families[family_id]
        base = family.names[0]
        for seed in range(4):
            rng = random.Random(seed)
            fresh = content.write_exercise({"function_name": variant(base, RESERVED, rng)}, seed)
            usual = content.write_exercise({"function_name": variant(base, TRAIN, rng)}, seed)
            assert fresh["family"] == usual["family"] == family_id
            assert not run_exercise(fresh), fresh["solution"]
            assert set(parameter_pools(fresh)) == {RESERVED}, fresh["signature"]
            assert RESERVED not in parameter_pools(usual), usual["signature"]
            task = " ".join(fresh["docstring"].split("\n\n")[0].split())
            assert any(task.startswith(t.split("$")[0].strip()) for t in family.task_reserved)
            assert not any(task.startswith(t.split("$")[0].strip()) for t in family.task)


def test_a_fifth_of_the_name_combinations_is_reserved():
    names = {pool: set(variants("numbers", pool)) for pool in (TRAIN, RESERVED)}
    assert not names[TRAIN] & names[RESERVED]
    assert len(names[TRAIN]) + len(names[RESERVED]) == 2 * len(modifiers())
    assert 0.1 < len(names[RESERVED]) / (2 * len(modifiers())) < 0.3
    assert strip_modifier(sorted(names[RESERVED])[0], {"numbers"}) == ("numbers", RESERVED)


def test_constants_are_split_between_training_and_in_family_values():
    assert constant_options(("int", 1, 9), "reserved") == [2, 5, 8]
    assert constant_options(("int", 1, 9), "train") == [1, 3, 4, 6, 7, 9]
    assert constant_options(("choice", 5, 7), "reserved") == [5, 7]  # too few to split
    assert constant_options(("ints",), "train") is None
    mask = [
        content.write_exercise({"function_name": name}, seed)
        for seed in range(30)
        for name in (variant("mask_string", RESERVED, random.Random(0)), "mask_all_but_last")
    ]
    hidden = {e["function_name"]: set() for e in mask}
    for exercise in mask:
        visible = re.search(r"final (\d+)|last (\d+)", exercise["docstring"])
        hidden[exercise["function_name"]].add(int(next(g for g in visible.groups() if g)))
    fresh = variant("mask_string", RESERVED, random.Random(0))
    assert hidden[fresh] <= {2, 5, 8} and len(hidden[fresh]) > 1
    assert not hidden["mask_all_but_last"] & {2, 5, 8}


def test_a_reserved_name_for_a_family_without_reserved_wordings_is_refused():
    family = next(f for f in load_families().values() if not f.task_reserved)
    with pytest.raises(ValueError, match="reserved wordings"):
        name = variant(family.names[0], RESERVED, random.Random(0))
        content.write_exercise({"function_name": name}, 0)


def test_a_mistake_that_hangs_is_stopped_and_counts_as_failing():
    looping = "def f(n: int) -> int:\n    while n != 1:\n        n = n\n    return n\n"
    assert fails_a_test(looping, ["assert f(2) == 1"])
    run = run_snippet("while True:\n    pass\n", timeout_s=0.2)
    assert isinstance(run.error, SnippetTimeout)


def test_a_broken_mutant_is_reported_not_warned_about():
    """A mutant like ``None[0]`` draws a compile-time SyntaxWarning; it must not reach the log."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = run_snippet("value = None[0]\n")
    assert isinstance(run.error, TypeError)
    assert not [w for w in caught if issubclass(w.category, SyntaxWarning)]


def test_inject_mistake_reports_bad_input():
    with pytest.raises(ValueError, match="solution"):
        content.inject_mistake({"function_name": "f", "tests": []}, 0)


# ---- diversity of a large sample -------------------------------------------------------------


@pytest.mark.slow
def test_a_large_sample_is_diverse():
    rng = random.Random(0)
    topics, section_shapes = set(), set()
    for seed in range(1000):
        constraints = sample_constraints(rng)
        text = content.write_textbook_section(constraints, seed)
        topics.add(constraints["topic"])
        section_shapes.update(code_shape(block) for block in CODE_BLOCK.findall(text))
    names, families, exercise_shapes, exercise_topics = set(), set(), set(), set()
    for seed in range(1000):
        entry = rng.choice(CURRICULUM.exercise_names)
        exercise = content.write_exercise({"function_name": entry["function_name"]}, seed)
        names.add(exercise["function_name"])
        families.add(exercise["family"])
        exercise_topics.add(exercise["topic"])
        exercise_shapes.add(code_shape(exercise["solution"]))
    print(
        f"\n1000 sections: {len(topics)} topics, {len(section_shapes)} code shapes"
        f"\n1000 exercises: {len(names)} function names, {len(families)} families,"
        f" {len(exercise_topics)} topics, {len(exercise_shapes)} code shapes"
    )
    assert len(topics) >= 60
    assert len(section_shapes) >= 180
    assert len(names) >= 400
    assert len(families) >= 140
    assert len(exercise_shapes) >= 200


# ---- the judge -------------------------------------------------------------------------------

TEACHING_SNIPPET = '''
"""Binary search: find a value in a sorted list by halving the range at each step."""


def binary_search(items: list[int], target: int) -> int:
    """Return the index of target in the sorted list items, or -1 if it is absent.

    >>> binary_search([1, 3, 5, 7], 5)
    2
    >>> binary_search([1, 3, 5, 7], 4)
    -1
    """
    low, high = 0, len(items) - 1  # the part of the list that may still hold target
    while low <= high:
        middle = (low + high) // 2  # look at the middle element
        if items[middle] == target:
            return middle
        # discard the half that cannot contain target
        if items[middle] < target:
            low = middle + 1
        else:
            high = middle - 1
    return -1


if __name__ == "__main__":
    assert binary_search([2, 4, 6], 6) == 2
    print(binary_search(list(range(0, 100, 3)), 42))
'''

CONFIG_MODULE = """
from .base import *  # noqa
from ..settings import defaults
import django
import celery

DEBUG = False
ALLOWED_HOSTS = ["example.com", "www.example.com"]
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "app"}}
CACHE_TTL = 300
LOGGING = {"version": 1, "handlers": {"console": {"class": "logging.StreamHandler"}}}
TIME_ZONE = "UTC"
"""


def test_judge_ranks_a_teaching_snippet_above_a_configuration_module():
    teaching = content.judge_code(textwrap.dedent(TEACHING_SNIPPET))
    config = content.judge_code(CONFIG_MODULE)
    assert teaching["score"] >= 4, teaching["reason"]
    assert config["score"] <= 1, config["reason"]
    assert teaching["features"]["relative_imports"] == 0
    assert config["features"]["relative_imports"] == 2
    assert isinstance(teaching["reason"], str) and teaching["reason"]
    broken = content.judge_code("def f(:\n    return\n")
    assert broken["score"] == 0 and not broken["features"]["parses"]


def test_judge_handles_a_file_cut_short():
    whole = textwrap.dedent(TEACHING_SNIPPET)
    cut = whole[: whole.index("        else:")] + "\n# ... (file cut here for the judge)\n"
    verdict = content.judge_code(cut * 1)
    assert verdict["features"]["parses"] and verdict["features"]["parsed_fraction"] >= 0.5


def test_judge_scores_spread_over_standard_library_files():
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py"))
    sample = random.Random(0).sample(files, 80)
    scores = Counter(
        content.judge_code(p.read_text(errors="replace")[:8000])["score"] for p in sample
    )
    print(f"\njudge scores on 80 stdlib modules: {sorted(scores.items())}")
    assert len(scores) >= 3
    assert 0.1 <= sum(n for s, n in scores.items() if s >= 3) / 80 <= 0.7


# ---- determinism -----------------------------------------------------------------------------

FINGERPRINT = """
import hashlib, json, random
from phi1lib.synthesis.curriculum import load_curriculum
from phi1lib.teacher.offline import content
rng = random.Random(11)
parts = []
for seed in range(40):
    topic = rng.choice(load_curriculum().topics)
    parts.append(content.write_textbook_section({"topic": topic["topic"]}, seed))
    exercise = content.write_exercise({"function_name": rng.choice(load_curriculum().exercise_names)["function_name"]}, seed)
    parts.append(json.dumps(exercise, sort_keys=True))
    parts.append(json.dumps(content.inject_mistake(exercise, seed), sort_keys=True))
print(hashlib.sha256("".join(parts).encode()).hexdigest())
"""


def test_same_constraints_and_seed_give_identical_output():
    constraints = {"topic": "recursion", "audience": "college student", "style": "lecture notes"}
    assert content.write_textbook_section(constraints, 5) == content.write_textbook_section(
        constraints, 5
    )
    request = {"function_name": "merge_sorted", "difficulty": "medium"}
    assert content.write_exercise(request, 9) == content.write_exercise(request, 9)
    exercise = content.write_exercise(request, 9)
    assert content.inject_mistake(exercise, 4) == content.inject_mistake(exercise, 4)


@pytest.mark.slow
def test_output_does_not_depend_on_the_string_hash_seed():
    digests = set()
    for hash_seed in ("1", "2"):
        environment = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", FINGERPRINT],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(result.stdout.strip())
    assert len(digests) == 1


def test_exercises_round_trip_through_json():
    exercise = content.write_exercise({"function_name": "group_by_length"}, 0)
    assert json.loads(json.dumps(exercise)) == exercise
    assert hashlib.sha256(exercise["solution"].encode()).hexdigest()
