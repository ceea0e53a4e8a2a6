"""Turning a completion into something checkable: the program to run, or the API names it uses.

Two kinds of check (chapter 7):

* **tests**: the program (prompt + completion, or the code of a chat answer) followed by the
  probe's asserts, run in the sandbox; it passes when it exits cleanly;
* **structure**: for libraries that are not installed here (PyGame, Tkinter) the program is
  parsed and its references are resolved through its imports, so that ``import tkinter as tk``
  followed by ``tk.Button(...)`` counts as a use of ``tkinter.Button``. A program that uses the
  right names may still be wrong; a program that does not parse or never calls the library is
  certainly wrong, which is the distinction the paper draws between phi-1-base ("plausible API
  calls") and phi-1-small ("invents wrong calls") in §3.2.

Introduced in chapter 7 ("What emerged after fine-tuning").
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass

from phi1lib.analysis.probes.suite import Probe

_FENCED = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_START = re.compile(r"^(def |class |import |from |@)", re.MULTILINE)
# A top-level line that continues code after it has started: a statement keyword, a decorator,
# a comment, or a name being assigned or called. Prose ("That is all, folks") stops the code,
# although Python would happily parse it as an expression.
_CODE_LINE = re.compile(
    r"^(def |class |import |from |@|#|if |for |while |with |try:|return |print\(|"
    r"[A-Za-z_][\w.]*(\[.*\])?\s*(=|\+=|-=|\())"
)


def longest_parsable_prefix(source: str) -> str:
    """The longest run of whole lines from the start of ``source`` that parses ("" if none).

    A completion cut off by the token budget usually ends mid-statement; the code before it is
    still worth judging.
    """
    lines = source.splitlines()
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end]) + "\n"
        try:
            ast.parse(candidate)
        except (SyntaxError, ValueError):
            continue
        return candidate
    return ""


def code_from_answer(answer: str) -> str:
    """The Python code in a chat answer: its fenced blocks, else the lines from the first one
    that starts like code (``def``, ``import``, ...) up to the first line of prose, cut to the
    longest part that parses."""
    blocks = [longest_parsable_prefix(block) for block in _FENCED.findall(answer)]
    blocks = [block for block in blocks if block.strip()]
    if blocks:
        return "\n".join(blocks)
    start = _CODE_START.search(answer)
    if start is None:
        return ""
    lines = answer[start.start() :].splitlines()
    kept = lines[:1]
    for line in lines[1:]:
        if line.strip() and not line[0].isspace() and not _CODE_LINE.match(line):
            break
        kept.append(line)
    return longest_parsable_prefix("\n".join(kept))


def program_source(probe: Probe, completion: str) -> str:
    """The code a completion amounts to: the prompt continued, or the code of the chat answer."""
    if probe.format == "chat":
        return code_from_answer(completion)
    return probe.prompt + completion


def program_with_tests(probe: Probe, completion: str) -> str:
    """The program that exits with status 0 exactly when the completion passes the tests."""
    return f"{program_source(probe, completion)}\n\n{probe.tests}\n"


@dataclass(frozen=True)
class References:
    """What a program refers to, with names resolved through its imports."""

    names: frozenset[str]  # every dotted name referenced (modules resolved)
    methods: frozenset[str]  # every attribute name that is called
    calls: Counter  # call sites per resolved dotted name
    keywords: frozenset[str]  # "name:keyword" for every keyword argument of every call
    grid_cells: frozenset[tuple[int, int]]  # (row, column) of every .grid(row=..., column=...)


def _import_table(tree: ast.AST) -> tuple[dict[str, str], list[str]]:
    aliases: dict[str, str] = {}
    stars: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name == "*":
                    stars.append(node.module)
                else:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases, stars


def _dotted(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def _resolve(parts: list[str], aliases: dict[str, str], stars: list[str]) -> set[str]:
    rest = ".".join(parts[1:])
    suffix = f".{rest}" if rest else ""
    if parts[0] in aliases:
        return {aliases[parts[0]] + suffix}
    return {".".join(parts)} | {f"{module}.{'.'.join(parts)}" for module in stars}


def _constant_int(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    return None


def references(source: str) -> References:
    """Resolve every name, call, keyword and grid cell of ``source`` (which must parse)."""
    tree = ast.parse(source)
    aliases, stars = _import_table(tree)
    names: set[str] = set()
    methods: set[str] = set()
    calls: Counter = Counter()
    keywords: set[str] = set()
    cells: set[tuple[int, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name) and (parts := _dotted(node)):
            names |= _resolve(parts, aliases, stars)
        if not isinstance(node, ast.Call):
            continue
        resolved = _resolve(parts, aliases, stars) if (parts := _dotted(node.func)) else set()
        short = node.func.attr if isinstance(node.func, ast.Attribute) else None
        if short:
            methods.add(short)
        for name in resolved:
            calls[name] += 1
        for keyword in node.keywords:
            if keyword.arg:
                keywords |= {f"{name}:{keyword.arg}" for name in resolved}
                if short:
                    keywords.add(f"{short}:{keyword.arg}")
        if short == "grid":
            given = {k.arg: _constant_int(k.value) for k in node.keywords}
            if given.get("row") is not None and given.get("column") is not None:
                cells.add((given["row"], given["column"]))
    return References(
        frozenset(names), frozenset(methods), calls, frozenset(keywords), frozenset(cells)
    )


def check_structure(probe: Probe, completion: str) -> tuple[bool, str]:
    """Whether the completion's program references what the probe asks for, and why not.

    The program is judged on its longest parsable prefix; "does not parse" means not even the
    prompt's own lines survived.
    """
    source = longest_parsable_prefix(program_source(probe, completion))
    if not source.strip():
        return False, "no parsable code"
    found = references(source)
    problems: list[str] = []
    for name in probe.structure.uses:
        present = name[1:] in found.methods if name.startswith(".") else name in found.names
        if not present:
            problems.append(f"never uses {name}")
    for name, expected in probe.structure.counts.items():
        if found.calls[name] != expected:
            problems.append(f"calls {name} {found.calls[name]} times, not {expected}")
    if probe.structure.positions is not None and found.grid_cells != probe.structure.positions:
        problems.append(f"grid cells {sorted(found.grid_cells)}")
    for keyword in probe.structure.keywords:
        if keyword not in found.keywords:
            problems.append(f"no call {keyword.replace(':', ' with keyword ')}")
    return not problems, "; ".join(problems) or "ok"
