"""The offline teacher: a local, procedural stand-in for GPT-3.5/GPT-4, not part of the client.

The client (:mod:`phi1lib.teacher`) talks to any OpenAI-compatible endpoint. With
``teacher.endpoint = "local"`` that endpoint is this package: an OpenAI-compatible server
(``server``, ``server_service``, ``server_batch``, started as ``python -m phi1lib.teacher.offline``
or ``phi1 teacher serve``), its answer logic (``procedural``) and the procedural writers it answers
with (``content``: topic prose, exercise families, mistakes, a rubric judge). It lets every
mechanism of the pipeline run without a network; its data is not as good as an LLM's.

Nothing in the pipeline depends on it except where the local server is started
(:class:`phi1lib.teacher.LocalTeacherServer`, ``phi1 teacher serve``): what the prompts ask for
comes from the curriculum (:mod:`phi1lib.synthesis.curriculum`), which this teacher reads like
any other consumer. Introduced in the appendix on teacher endpoints.
"""

from phi1lib.teacher.offline.server_config import LOCAL_MODEL, ServerConfig

__all__ = ["LOCAL_MODEL", "ServerConfig"]
