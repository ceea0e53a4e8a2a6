"""Keep the book's version and release date in one place, and every citation file in step with it.

The version and the date live in ``phi1lib/__init__.py`` (``__version__``, ``__release_date__``);
``pyproject.toml`` reads the version from there. Three files quote them for readers and archives:
``CITATION.cff`` (GitHub's "Cite this repository"), ``.zenodo.json`` (the metadata Zenodo's GitHub
integration uses to mint a DOI for a release) and the preface's "How to cite" entry. This script
writes them, or checks that they agree:

    python scripts/release.py --set 0.2.0 --date 2026-12-03   # before tagging v0.2.0
    python scripts/release.py --check                         # CI and the tests
    python scripts/release.py --check --tag v0.2.0            # the publishing workflow

It needs only the standard library, so the workflow can run it before anything is installed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE_INIT = REPO / "phi1lib" / "__init__.py"
CITATION = REPO / "CITATION.cff"
ZENODO = REPO / ".zenodo.json"
PREFACE = REPO / "book" / "intro.md"

_INIT_VERSION = re.compile(r'^__version__ = "([^"]+)"$', re.M)
_INIT_DATE = re.compile(r'^__release_date__ = "([^"]+)"$', re.M)
_CFF_VERSION = re.compile(r"^version: (.+)$", re.M)
_CFF_DATE = re.compile(r"^date-released: (.+)$", re.M)
# The book's own entry in the preface: its year and version fields.
_BOOK_ENTRY = re.compile(r"(@misc\{phi1book,.*?\n\})", re.S)
_ENTRY_YEAR = re.compile(r"(year\s*=\s*\{)[^}]*(\})")
_ENTRY_VERSION = re.compile(r"(version\s*=\s*\{)[^}]*(\})")


def _one(pattern: re.Pattern, text: str, where: Path) -> str:
    found = pattern.findall(text)
    if len(found) != 1:
        raise SystemExit(f"{where}: expected one match of {pattern.pattern!r}, found {len(found)}")
    return found[0]


def package_release() -> tuple[str, str]:
    """The version and release date that ``phi1lib/__init__.py`` declares."""
    text = PACKAGE_INIT.read_text()
    return _one(_INIT_VERSION, text, PACKAGE_INIT), _one(_INIT_DATE, text, PACKAGE_INIT)


def quoted_releases() -> dict[str, tuple[str, str]]:
    """(version, date) as each citation file states it."""
    cff = CITATION.read_text()
    zenodo = json.loads(ZENODO.read_text())
    entry = _one(_BOOK_ENTRY, PREFACE.read_text(), PREFACE)
    return {
        str(CITATION.relative_to(REPO)): (
            _one(_CFF_VERSION, cff, CITATION).strip().strip('"'),
            _one(_CFF_DATE, cff, CITATION).strip().strip('"'),
        ),
        str(ZENODO.relative_to(REPO)): (zenodo["version"], zenodo["publication_date"]),
        # The bibliography entry carries the year only.
        str(PREFACE.relative_to(REPO)): (
            _one(re.compile(r"version\s*=\s*\{([^}]*)\}"), entry, PREFACE),
            _one(re.compile(r"year\s*=\s*\{([^}]*)\}"), entry, PREFACE),
        ),
    }


def disagreements(version: str, date: str) -> list[str]:
    """One line per file that quotes another version or date than the package declares."""
    problems = []
    for name, (quoted_version, quoted_date) in quoted_releases().items():
        expected_date = date[:4] if name.endswith("intro.md") else date
        if (quoted_version, quoted_date) != (version, expected_date):
            problems.append(
                f"{name}: version {quoted_version!r}, date {quoted_date!r}; "
                f"phi1lib/__init__.py says {version!r}, {expected_date!r}"
            )
    return problems


def set_release(version: str, date: str) -> None:
    """Write ``version`` and ``date`` into the package and every file that quotes them."""
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise SystemExit(f"version {version!r} is not MAJOR.MINOR.PATCH")
    datetime.date.fromisoformat(date)  # raises on a malformed date
    init = PACKAGE_INIT.read_text()
    init = _INIT_VERSION.sub(f'__version__ = "{version}"', init)
    PACKAGE_INIT.write_text(_INIT_DATE.sub(f'__release_date__ = "{date}"', init))
    cff = _CFF_VERSION.sub(f"version: {version}", CITATION.read_text())
    CITATION.write_text(_CFF_DATE.sub(f"date-released: {date}", cff))
    zenodo = json.loads(ZENODO.read_text())
    zenodo.update(version=version, publication_date=date)
    ZENODO.write_text(json.dumps(zenodo, indent=2, ensure_ascii=False) + "\n")
    preface = PREFACE.read_text()
    entry = _one(_BOOK_ENTRY, preface, PREFACE)
    updated = _ENTRY_YEAR.sub(rf"\g<1>{date[:4]}\g<2>", entry)
    updated = _ENTRY_VERSION.sub(rf"\g<1>{version}\g<2>", updated)
    PREFACE.write_text(preface.replace(entry, updated))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", metavar="VERSION", help="write this version everywhere")
    parser.add_argument("--date", help="release date (YYYY-MM-DD) with --set; default today")
    parser.add_argument("--check", action="store_true", help="fail when a file disagrees")
    parser.add_argument("--tag", help="with --check: the git tag must be v<version>")
    args = parser.parse_args(argv)
    if args.set:
        set_release(args.set, args.date or datetime.date.today().isoformat())
    version, date = package_release()
    problems = disagreements(version, date)
    if args.tag and args.tag != f"v{version}":
        problems.append(f"tag {args.tag!r} does not name the package's version v{version}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"phi1lib {version}, released {date}: every citation file agrees")
    return 1 if problems and (args.check or args.set) else 0


if __name__ == "__main__":
    sys.exit(main())
