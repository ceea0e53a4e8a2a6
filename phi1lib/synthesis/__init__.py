"""Synthesis: the paper's synthetic textbooks and CodeExercises, executed, cleaned, shareable.

One package for chapters 2 and 3, one job per module:

- ``constraints``: balanced prompt constraints from the topic list, audiences, styles and the
  exercise function names (the paper's source of diversity);
- ``textbooks`` + ``code_blocks``: sections from the teacher, every Python block executed;
- ``exercises``: exercises from the teacher, rebuilt in the paper's format (signature +
  docstring, then the body), each run against its tests;
- ``verification``: the sandbox runs and their failure kinds, with a resumable cache;
- ``cleaning``: exact/near deduplication and decontamination (13-gram overlap, AST match rate);
- ``split``: the held-out exercise families; ``tokens``: the fixed token counter;
- ``stages``: the run-store stages ``textbooks`` and ``exercises``;
- ``report``: the tables and distributions the chapters show;
- ``hub``: :func:`push_to_hub`, one call to share a dataset on the Hugging Face hub.
"""

from phi1lib.synthesis.hub import push_to_hub

__all__ = ["push_to_hub"]
