"""Measurable symptoms of the paper's four complaints about raw code (paper §2).

The authors looked at samples of The Stack and StackOverflow and found code that (1) is not
self-contained but leans on other files, (2) is trivial boilerplate (constants, parameters, GUI
setup), (3) buries its logic in long, poorly documented functions, and (4) covers topics very
unevenly. Chapter 1 shows each on a real file of the corpus, picked by one of the measures below
rather than by hand, so the same code finds an example on any machine:

* ``local_imports``: imports of the file's own package (relative imports, or absolute imports of
  its top-level package); the more, the less the file stands on its own.
* ``boilerplate_fraction``: of all simple statements, the share that only assign literal values
  or call something with literal arguments (``TIMEOUT = 30``, ``parser.add_argument("-v")``).
* ``longest_undocumented``: the length in lines of the longest function without a docstring.
* the fourth is a property of the corpus, not of a file: the share of files per package.

Introduced in chapter 1.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass

_LITERAL_NODES = (
    ast.Constant,
    ast.Tuple,
    ast.List,
    ast.Set,
    ast.Dict,
    ast.Name,
    ast.Attribute,
    ast.UnaryOp,
    ast.USub,
    ast.UAdd,
    ast.Not,
    ast.Load,
    ast.keyword,
    ast.Starred,
)
_SIMPLE_STATEMENTS = (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Expr, ast.Return, ast.Raise)


@dataclass(frozen=True)
class CodeProperties:
    """What chapter 1 measures in one file."""

    lines: int
    functions: int
    documented_functions: int
    imports: int
    local_imports: int
    simple_statements: int
    boilerplate_statements: int
    longest_undocumented: int
    longest_undocumented_name: str
    longest_undocumented_start: int  # first line (1-based) of that function, 0 if none

    @property
    def boilerplate_fraction(self) -> float:
        return self.boilerplate_statements / self.simple_statements if self.simple_statements else 0


def _is_literal(node: ast.AST) -> bool:
    return all(isinstance(child, _LITERAL_NODES) for child in ast.walk(node))


def _is_boilerplate(statement: ast.stmt) -> bool:
    """An assignment of a literal value, or a call whose arguments are all literals."""
    if isinstance(statement, ast.Assign | ast.AnnAssign):
        return statement.value is not None and _is_literal(statement.value)
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        call = statement.value
        arguments = [*call.args, *(k.value for k in call.keywords)]
        return _is_literal(call.func) and all(_is_literal(a) for a in arguments)
    return False


def _is_local_import(node: ast.AST, package: str) -> int:
    """How many names this import statement takes from the file's own package."""
    top = package.removeprefix("stdlib/")
    if isinstance(node, ast.ImportFrom):
        own = node.level > 0 or (node.module or "").split(".")[0] == top
        return len(node.names) if own else 0
    if isinstance(node, ast.Import):
        return sum(alias.name.split(".")[0] == top for alias in node.names)
    return 0


def code_properties(text: str, package: str = "") -> CodeProperties:
    """Measure one file (chapter 1). Text that does not parse measures as empty code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError):
            tree = ast.Module(body=[], type_ignores=[])
    functions = documented = imports = local = simple = boilerplate = 0
    longest, longest_name, longest_start = 0, "", 0
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions += 1
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if ast.get_docstring(node):
                documented += 1
            elif length > longest:
                longest, longest_name, longest_start = length, node.name, node.lineno
        elif isinstance(node, ast.Import | ast.ImportFrom):
            imports += len(node.names)
            local += _is_local_import(node, package)
        elif isinstance(node, _SIMPLE_STATEMENTS):
            simple += 1
            boilerplate += _is_boilerplate(node)
    return CodeProperties(
        lines=len(text.splitlines()),
        functions=functions,
        documented_functions=documented,
        imports=imports,
        local_imports=local,
        simple_statements=simple,
        boilerplate_statements=boilerplate,
        longest_undocumented=longest,
        longest_undocumented_name=longest_name,
        longest_undocumented_start=longest_start,
    )


def first_code_line(text: str) -> int:
    """The number (1-based) of the first line that is neither blank nor a comment (1 if none).

    Licence headers, shebangs and coding cookies come before it. (chapter 1)
    """
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return number
    return 1


def excerpt(text: str, start: int = 1, n_lines: int = 25) -> str:
    """Lines ``start`` to ``start + n_lines - 1`` (1-based) with their numbers, and what follows."""
    lines = text.splitlines()
    shown = lines[start - 1 : start - 1 + n_lines]
    width = len(str(start + len(shown)))
    body = "\n".join(f"{start + i:>{width}} | {line}" for i, line in enumerate(shown))
    rest = len(lines) - (start - 1 + len(shown))
    return body + (f"\n{'':>{width}} | ... ({rest} more lines)" if rest > 0 else "")


def pick_examples(texts: list[str], packages: list[str]) -> dict[str, int]:
    """For each of the first three complaints, the index of the file that shows it most.

    * ``not_self_contained``: most imports of its own package per line (files of at least 30
      lines with at least 5 such imports, so that a one-line re-export does not win);
    * ``boilerplate``: the highest boilerplate fraction among files of 20 or more statements;
    * ``buried_logic``: the longest function without a docstring.

    A complaint no file shows is left out. (chapter 1)
    """
    props = [code_properties(t, p) for t, p in zip(texts, packages, strict=True)]
    rules = {
        "not_self_contained": (
            lambda p: p.lines >= 30 and p.local_imports >= 5,
            lambda p: p.local_imports / p.lines,
        ),
        "boilerplate": (
            lambda p: p.simple_statements >= 20,
            lambda p: (p.boilerplate_fraction, p.simple_statements),
        ),
        "buried_logic": (lambda p: p.longest_undocumented > 0, lambda p: p.longest_undocumented),
    }
    chosen = {}
    for name, (eligible, key) in rules.items():
        candidates = [i for i, p in enumerate(props) if eligible(p)]
        if candidates:
            chosen[name] = max(candidates, key=lambda i: key(props[i]))
    return chosen
