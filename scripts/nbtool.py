"""Write a chapter notebook from a plain-text source, and strip outputs from notebooks.

Chapters are committed as ``.ipynb`` without outputs. Authors may keep a chapter as a "percent"
script (cells separated by ``# %%`` lines, markdown cells by ``# %% [markdown]``) and convert it:

    python scripts/nbtool.py extract notebooks/NN_name.ipynb chapter.py   # to edit as text
    python scripts/nbtool.py build chapter.py notebooks/NN_name.ipynb     # back to a notebook
    python scripts/nbtool.py strip notebooks/*.ipynb

A code cell whose first line is ``# parameters`` gets the ``parameters`` tag.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def _markdown(lines: list[str]) -> str:
    return "\n".join(
        line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines
    ).strip()


def build(source: Path, target: Path) -> None:
    cells, kind, lines = [], None, []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(_markdown(lines)))
        elif text:
            cell = nbformat.v4.new_code_cell(text)
            if text.startswith("# parameters"):
                cell.metadata["tags"] = ["parameters"]
            cells.append(cell)

    for line in source.read_text().splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = KERNEL
    notebook.metadata["language_info"] = {"name": "python"}
    nbformat.write(notebook, target)


def extract(source: Path, target: Path) -> None:
    notebook = nbformat.read(source, as_version=4)
    parts = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            body = "\n".join(f"# {line}" if line else "#" for line in cell.source.splitlines())
            parts.append(f"# %% [markdown]\n{body}")
        else:
            parts.append(f"# %%\n{cell.source}")
    target.write_text("\n\n".join(parts) + "\n")


def strip(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    nbformat.write(notebook, path)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "build":
        build(Path(args[0]), Path(args[1]))
    elif command == "extract":
        extract(Path(args[0]), Path(args[1]))
    elif command == "strip":
        for name in args:
            strip(Path(name))
    else:
        raise SystemExit(__doc__)
