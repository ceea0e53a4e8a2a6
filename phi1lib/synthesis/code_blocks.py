"""The code woven into a textbook section: find its Python blocks and make each one runnable.

A synthetic textbook is prose with code in it (paper §2.2); a section whose code does not
run teaches something false. So every fenced ```python block of a section is executed in the
sandbox. Two habits of real LLM textbooks are handled:

* **Interactive sessions.** A block written as ``>>> x = 1`` / ``... `` lines runs its input
  lines (the ``>>>`` and ``...`` prompts removed); the echoed outputs are not compared.
* **Blocks that build on earlier ones.** A textbook defines a function in one block and calls
  it in the next. A block that fails on its own is run a second time after the section's earlier
  blocks, each executed into one shared namespace with its own errors ignored; it counts as
  working if it runs then. A block that fails both ways is a failing block.

Blocks fenced as ``text``, ``console`` or without a language are output or prose, not code, and
are not run. Introduced in chapter 2 ("Executing the textbooks").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PYTHON_LANGUAGES = ("python", "py", "python3")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced code block: its language tag, its source and the line it starts on (1-based)."""

    language: str
    code: str
    line: int

    @property
    def is_python(self) -> bool:
        return self.language in PYTHON_LANGUAGES


def code_blocks(markdown: str) -> list[CodeBlock]:
    """Every fenced code block of a markdown text, in order (chapter 2).

    An unclosed fence at the end (a truncated answer) yields the code up to the end.
    """
    blocks: list[CodeBlock] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening.group("fence")
        language = (opening.group("info").strip().split() or [""])[0].lower()
        body: list[str] = []
        start = index + 1
        index += 1
        while index < len(lines):
            closing = _FENCE.match(lines[index])
            if (
                closing
                and closing.group("fence")[0] == fence[0]
                and len(closing.group("fence")) >= len(fence)
                and not closing.group("info").strip()
            ):
                break
            body.append(lines[index])
            index += 1
        blocks.append(CodeBlock(language=language, code="\n".join(body), line=start + 1))
        index += 1
    return blocks


def python_blocks(markdown: str) -> list[CodeBlock]:
    """The blocks of a section that are Python code to run (chapter 2)."""
    return [block for block in code_blocks(markdown) if block.is_python]


def runnable_source(code: str) -> str:
    """The program a block stands for: an interactive session becomes its input lines."""
    lines = code.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first.lstrip().startswith(">>>"):
        return code
    kept = []
    for line in lines:
        stripped = line.lstrip()
        if stripped[:4] in (">>> ", "... ") or stripped in (">>>", "..."):
            kept.append(stripped[4:])
    return "\n".join(kept)


def with_context(earlier: list[str], code: str) -> str:
    """``code`` run after ``earlier`` blocks, each executed with its own errors ignored.

    The earlier blocks are embedded as string literals and run with ``exec`` into the module's
    namespace, so ``code`` itself stays top-level: a failing ``assert`` in it is still reported
    with its own source line.
    """
    if not earlier:
        return code
    prelude = [
        "for __block in " + repr(earlier) + ":",
        "    try:",
        "        exec(compile(__block, '<earlier block>', 'exec'), globals())",
        "    except BaseException:",
        "        pass",
        "del __block",
        "",
    ]
    return "\n".join(prelude) + code
