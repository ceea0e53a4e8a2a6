"""phi1lib: the library behind the phi-1 book.

Every chapter of the book imports this package; its modules follow the paper's pipeline:
profiles and the run store (foundations), the teacher, the sandbox, then the stages
(filtering, synthesis, training, evaluation, analysis).
"""

# The book's version and release date, in this one place: pyproject.toml reads the version from
# here, and `python scripts/release.py --set X.Y.Z` writes both into CITATION.cff, .zenodo.json
# and the preface's "How to cite" entry.
__version__ = "0.2.0"
__release_date__ = "2026-12-03"
