"""The procedural judge: an additive 0-5 rubric for the educational value of a code file.

The paper asked GPT-4 how much a snippet would help a student learning *basic* programming
concepts (paper §2.1), and described what made standard code poor teaching material
(paper §2): it is not self-contained, it is mostly boilerplate (constants, parameters,
GUI setup), its logic is buried in long, undocumented functions. This judge turns those words
into measurable features of the code and scores them with the same additive rubric that the
teacher's ``judge_educational_value`` prompt gives a real LLM (in the spirit of FineWeb-Edu's
annotation prompt, Penedo et al. 2024): start at 0, add one point per criterion met, in order,
and stop at the first criterion that is not met.

1. **Real content** - the code parses (a file cut short for the judge counts when the part before
   the cut parses and covers at least half of it) and has at least 3 lines of code.
2. **Programming concepts** - it defines a function or a class *and* uses control flow (``if``,
   loops, comprehensions), or it is a script of at least 5 statements with control flow.
3. **Usable in a lesson** - self-contained (no relative imports, at most one import from outside
   the standard library), mostly logic (at least half of its statements are not boilerplate:
   constant tables, argument parsing, GUI and logging setup), functions of readable length
   (40 lines on average at most), and documented (docstrings on at least half of its functions
   and classes, or one comment line per ten lines of code).
4. **Written for learning** - focused (at most 300 lines of code), standard library only, no
   function longer than 60 lines, and well documented (docstrings on at least 75%).
5. **Outstanding** - small (at most 150 lines of code), every function and class documented,
   comments on at least one line in ten, and worked examples: doctest ``>>>`` lines, ``assert``
   statements, or a ``__main__`` demonstration.

It is a stand-in for GPT-4, honest about what it is: it sees structure, not meaning, so a
well-documented but useless file can score high and a brilliant terse one low. Introduced in
chapter 1 (the quality filter).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import asdict, dataclass
from typing import Any

STDLIB = set(sys.stdlib_module_names) | {"__future__"}
BOILERPLATE_CALLS = {
    "add_argument",
    "add_argument_group",
    "add_parser",
    "add_subparsers",
    "set_defaults",
    "basicConfig",
    "setLevel",
    "addHandler",
    "setFormatter",
    "getLogger",
    "pack",
    "grid",
    "place",
    "config",
    "configure",
    "bind",
    "mainloop",
    "geometry",
    "title",
    "setWindowTitle",
    "setGeometry",
    "addWidget",
    "setLayout",
    "connect",
    "resize",
    "show",
    "setText",
    "setStyleSheet",
    "register",
    "update",
    "setdefault",
    "append",
}
CONTROL_FLOW = (
    ast.If,
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.Try,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.IfExp,
)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
CRITERIA = (
    "real content",
    "programming concepts",
    "usable in a lesson",
    "written for learning",
    "outstanding",
)


@dataclass
class CodeFeatures:
    """The measurable features the rubric reads (all computed from the source and its AST)."""

    parses: bool
    parsed_fraction: float
    lines: int
    code_lines: int
    comment_lines: int
    comment_ratio: float
    functions: int
    classes: int
    documented_fraction: float
    module_docstring: bool
    mean_function_length: float
    max_function_length: int
    control_flow: int
    statements: int
    boilerplate_statements: int
    logic_ratio: float
    imports: int
    relative_imports: int
    external_imports: int
    examples: int


def _parse(code: str) -> tuple[ast.Module | None, float]:
    """The AST of ``code``, or of its longest parsable prefix cut at a top-level line."""
    try:
        return ast.parse(code), 1.0
    except (SyntaxError, ValueError):
        pass
    lines = code.splitlines(keepends=True)
    cuts = [i for i, line in enumerate(lines) if i and line[:1].strip() and line[:1] != "#"]
    low, high, best = 0, len(cuts) - 1, None
    while low <= high:
        middle = (low + high) // 2
        try:
            tree = ast.parse("".join(lines[: cuts[middle]]))
        except (SyntaxError, ValueError):
            high = middle - 1
        else:
            best, low = (tree, cuts[middle] / max(len(lines), 1)), middle + 1
    return best if best is not None else (None, 0.0)


def _is_constant_data(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return all(_is_constant_data(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        return all(_is_constant_data(v) for v in [*node.keys, *node.values] if v is not None)
    if isinstance(node, ast.UnaryOp):
        return _is_constant_data(node.operand)
    return False


def _is_boilerplate(statement: ast.stmt, top_level: bool) -> bool:
    if isinstance(statement, ast.Import | ast.ImportFrom | ast.Pass | ast.Global | ast.Nonlocal):
        return True
    if isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None:
        if _is_constant_data(statement.value):
            return True
        value = statement.value
        if top_level and isinstance(value, ast.Call | ast.Attribute | ast.Name):
            return True
    if isinstance(statement, ast.Expr):
        value = statement.value
        if isinstance(value, ast.Constant):
            return True
        if isinstance(value, ast.Call):
            func = value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            return name in BOILERPLATE_CALLS or top_level
    return False


def _statements(tree: ast.Module) -> tuple[int, int]:
    total = boilerplate = 0
    stack: list[tuple[ast.AST, bool]] = [(tree, True)]
    while stack:
        node, top_level = stack.pop()
        for field in ("body", "orelse", "finalbody", "handlers"):
            for child in getattr(node, field, []) or []:
                if isinstance(child, ast.stmt):
                    total += 1
                    boilerplate += _is_boilerplate(child, top_level)
                inner_top = top_level and not isinstance(child, FUNCTIONS)
                stack.append((child, inner_top and not isinstance(child, ast.ClassDef)))
    return total, boilerplate


def _has_main_demo(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return any(isinstance(n, ast.Call) for n in ast.walk(node))
    return False


def measure(code: str) -> CodeFeatures:
    """Compute the rubric's features for one file or snippet (chapter 1)."""
    tree, parsed_fraction = _parse(code)
    raw_lines = code.splitlines()
    stripped = [line.strip() for line in raw_lines]
    comment_lines = sum(1 for line in stripped if line.startswith("#"))
    code_lines = sum(1 for line in stripped if line and not line.startswith("#"))
    empty = dict(
        parses=False,
        parsed_fraction=0.0,
        lines=len(raw_lines),
        code_lines=code_lines,
        comment_lines=comment_lines,
        comment_ratio=comment_lines / max(code_lines, 1),
        functions=0,
        classes=0,
        documented_fraction=0.0,
        module_docstring=False,
        mean_function_length=0.0,
        max_function_length=0,
        control_flow=0,
        statements=0,
        boilerplate_statements=0,
        logic_ratio=0.0,
        imports=0,
        relative_imports=0,
        external_imports=0,
        examples=0,
    )
    if tree is None:
        return CodeFeatures(**empty)
    nodes = list(ast.walk(tree))
    functions = [n for n in nodes if isinstance(n, FUNCTIONS)]
    classes = [n for n in nodes if isinstance(n, ast.ClassDef)]
    definitions = functions + classes
    documented = [d for d in definitions if ast.get_docstring(d)]
    lengths = [n.end_lineno - n.lineno + 1 for n in functions]  # type: ignore[operator]
    imports = [n for n in nodes if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = [a.name for n in imports if isinstance(n, ast.Import) for a in n.names]
    modules += [n.module or "" for n in imports if isinstance(n, ast.ImportFrom) and not n.level]
    relative = sum(1 for n in imports if isinstance(n, ast.ImportFrom) and n.level)
    external = sorted({m.split(".")[0] for m in modules if m.split(".")[0] not in STDLIB})
    statements, boilerplate = _statements(tree)
    docstrings = [ast.get_docstring(d) or "" for d in [tree, *definitions]]
    examples = sum(doc.count(">>>") for doc in docstrings)
    examples += sum(1 for n in nodes if isinstance(n, ast.Assert)) + _has_main_demo(tree)
    return CodeFeatures(
        **{
            **empty,
            "parses": True,
            "parsed_fraction": round(parsed_fraction, 3),
            "functions": len(functions),
            "classes": len(classes),
            "documented_fraction": round(len(documented) / len(definitions), 3)
            if definitions
            else 0.0,
            "module_docstring": ast.get_docstring(tree) is not None,
            "mean_function_length": round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
            "max_function_length": max(lengths, default=0),
            "control_flow": sum(1 for n in nodes if isinstance(n, CONTROL_FLOW)),
            "statements": statements,
            "boilerplate_statements": boilerplate,
            "logic_ratio": round(1 - boilerplate / statements, 3) if statements else 0.0,
            "imports": len(imports),
            "relative_imports": relative,
            "external_imports": len(external),
            "examples": examples,
        }
    )


def _criteria(f: CodeFeatures) -> list[tuple[bool, str]]:
    """Each criterion with whether it holds and the words that explain the verdict."""
    documented = f.documented_fraction >= 0.34 or f.comment_ratio >= 0.06
    return [
        (
            f.parses and f.parsed_fraction >= 0.5 and f.code_lines >= 3,
            f"{f.code_lines} lines of code, {f.parsed_fraction:.0%} of the text parses"
            if f.parses
            else "does not parse as Python 3",
        ),
        (
            (f.functions + f.classes > 0 and f.control_flow > 0)
            or (f.statements >= 5 and f.control_flow > 0),
            f"{f.functions} functions, {f.classes} classes, {f.control_flow} control-flow constructs",
        ),
        (
            f.relative_imports == 0
            and f.external_imports <= 2
            and f.logic_ratio >= 0.5
            and f.mean_function_length <= 40
            and documented,
            f"{f.relative_imports} relative and {f.external_imports} non-stdlib imports, "
            f"{f.logic_ratio:.0%} logic, functions {f.mean_function_length:.0f} lines on average, "
            f"{f.documented_fraction:.0%} documented, {f.comment_ratio:.2f} comments per line",
        ),
        (
            f.code_lines <= 300
            and f.external_imports == 0
            and f.max_function_length <= 60
            and f.documented_fraction >= 0.75,
            f"{f.code_lines} lines, longest function {f.max_function_length} lines, "
            f"{f.external_imports} non-stdlib imports",
        ),
        (
            f.code_lines <= 150
            and f.documented_fraction == 1.0
            and f.comment_ratio >= 0.1
            and f.examples > 0,
            f"{f.examples} worked examples, {f.comment_ratio:.2f} comments per line",
        ),
    ]


def judge_code(code: str) -> dict[str, Any]:
    """Score ``code``'s educational value 0-5 with the additive rubric of the module docstring.

    Returns ``{"score", "reason", "features"}``: the reason names the criteria met and the first
    one missed, with the numbers behind the verdict. Introduced in chapter 1.
    """
    if not isinstance(code, str):
        raise ValueError(f"judge_code needs the code as a string, got {type(code).__name__}")
    features = measure(code)
    score = 0
    missed = ""
    for (met, evidence), name in zip(_criteria(features), CRITERIA, strict=True):
        if not met:
            missed = f" Not {name}: {evidence}."
            break
        score += 1
    met_names = ", ".join(CRITERIA[:score]) or "none"
    reason = f"Score {score}/5. Meets: {met_names}.{missed}"
    return {"score": score, "reason": reason, "features": asdict(features)}
