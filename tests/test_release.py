"""Publishing: the workflow that builds and deploys the site, and the release metadata for a DOI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "book.yml"


def _workflow() -> dict:
    document = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the bare key `on` as the boolean True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def _readme_commands() -> list[str]:
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert block, "README has a Quick start block of commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_workflow_builds_on_pull_requests_and_deploys_on_tags():
    workflow = _workflow()
    triggers = workflow["on"]
    assert "pull_request" in triggers
    assert triggers["push"]["tags"] == ["v*"] and "branches" not in triggers["push"]
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["if"] == "startsWith(github.ref, 'refs/tags/')", "pull requests never deploy"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(step.get("uses", "").startswith("actions/deploy-pages@") for step in deploy["steps"])
    uploads = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages")]
    assert uploads and uploads[0]["with"]["path"] == "_build/tiny/_build/html"


def test_workflow_builds_with_the_readme_command_from_a_clean_checkout():
    steps = _workflow()["jobs"]["build"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    commands = [step["run"].strip() for step in steps if "run" in step]
    book_command = next(c for c in _readme_commands() if c.startswith("make book"))
    assert book_command in commands, f"the workflow must run the README's {book_command!r}"
    made = subprocess.run(
        ["make", "-n", "book"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "_build/tiny" in made, "the uploaded folder is where `make book` writes the site"


def test_release_files_agree_with_the_package():
    result = subprocess.run(
        [sys.executable, "scripts/release.py", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    from importlib.metadata import version

    from phi1lib import __release_date__, __version__

    assert version("phi1lib") == __version__, "pyproject.toml reads the package's version"
    assert f"version      = {{{__version__}}}" in (REPO / "book" / "intro.md").read_text()
    assert __release_date__[:4] in (REPO / "book" / "intro.md").read_text()


def test_zenodo_metadata_matches_the_citation_file():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    zenodo = json.loads((REPO / ".zenodo.json").read_text())
    assert zenodo["title"] == cff["title"]
    assert [c["name"] for c in zenodo["creators"]] == [a["name"] for a in cff["authors"]]
    assert zenodo["license"] == cff["license"]
    assert zenodo["version"] == str(cff["version"])
    assert zenodo["publication_date"] == str(cff["date-released"])
    assert zenodo["upload_type"] == "software" and zenodo["keywords"] == cff["keywords"]
    assert {"identifier": "arXiv:2306.11644", "relation": "references", "scheme": "arxiv"} in (
        zenodo["related_identifiers"]
    )


def test_release_script_writes_every_file_and_rejects_a_wrong_tag(tmp_path):
    copy = tmp_path / "repo"
    for relative in ("phi1lib/__init__.py", "CITATION.cff", ".zenodo.json", "book/intro.md"):
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / relative, copy / relative)
    (copy / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "release.py", copy / "scripts" / "release.py")
    script = [sys.executable, str(copy / "scripts" / "release.py")]
    done = subprocess.run(
        [*script, "--set", "9.8.7", "--date", "2031-02-03"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert '__version__ = "9.8.7"' in (copy / "phi1lib/__init__.py").read_text()
    assert "version: 9.8.7\n" in (copy / "CITATION.cff").read_text()
    assert "date-released: 2031-02-03\n" in (copy / "CITATION.cff").read_text()
    assert json.loads((copy / ".zenodo.json").read_text())["publication_date"] == "2031-02-03"
    assert "year         = {2031}" in (copy / "book/intro.md").read_text()
    check = subprocess.run([*script, "--check", "--tag", "v9.8.7"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    wrong = subprocess.run([*script, "--check", "--tag", "v9.8.6"], capture_output=True, text=True)
    assert wrong.returncode == 1 and "does not name the package's version v9.8.7" in wrong.stderr
    (copy / ".zenodo.json").write_text(
        (copy / ".zenodo.json").read_text().replace('"9.8.7"', '"9.8.6"')
    )
    stale = subprocess.run([*script, "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and ".zenodo.json: version '9.8.6'" in stale.stderr
    with pytest.raises(subprocess.CalledProcessError):
        subprocess.run([*script, "--set", "2.0"], capture_output=True, check=True)
