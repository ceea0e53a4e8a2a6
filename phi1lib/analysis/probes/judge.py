"""The LLM judge: a teacher grades each probe answer from 0 to 10, as GPT-4 did in the paper.

Execution and structure checks say pass or fail; a grade says *how close* an answer came, which
matters for the gui and chat probes, whose checks cannot see the logic. The paper graded its 50
unconventional problems this way (§4, paper-notes §7). The words sent live in
``probe_grade.toml`` beside this module, a template in the teacher's format, so answers are
cached and carry provenance like every other teacher request. The offline procedural teacher
cannot grade, so the judge runs only when the profile's teacher is a real LLM endpoint.
Introduced in chapter 7 ("What emerged after fine-tuning").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from phi1lib.analysis.probes.suite import Probe
from phi1lib.teacher.prompts import PromptTemplate, read_template
from phi1lib.teacher.records import TeacherRequest, TeacherResult

TEMPLATE_FILE = Path(__file__).with_name("probe_grade.toml")


def grade_template() -> PromptTemplate:
    """The judge's prompt template (``probe_grade.toml``)."""
    return read_template(TEMPLATE_FILE)


def grading_material(probe: Probe, completion: str) -> str:
    """What the judge reads: the task, a correct answer and the candidate, in labelled parts."""
    correct = probe.reference if probe.format == "chat" else probe.prompt + probe.reference
    candidate = completion if probe.format == "chat" else probe.prompt + completion
    return f"TASK:\n{probe.prompt}\n\nCORRECT:\n{correct}\n\nCANDIDATE:\n{candidate}"


def grade_requests(
    probes: Sequence[Probe], completions: Sequence[str], model_label: str
) -> list[TeacherRequest]:
    """One grading request per (probe, completion); ids name the model and the probe."""
    template = grade_template()
    requests = []
    for probe, completion in zip(probes, completions, strict=True):
        constraints = {"probe": probe.id, "category": probe.category}
        requests.append(
            TeacherRequest(
                id=f"{model_label}:{probe.id}",
                template=template.id,
                template_version=template.version,
                messages=template.render(constraints, code=grading_material(probe, completion)),
                params=dict(template.params),
                json_schema=template.json_schema,
                constraints=constraints,
            )
        )
    return requests


def read_grade(result: TeacherResult) -> float | None:
    """The grade of one answered request, or None when the judge gave no usable grade."""
    if not result.ok or not isinstance(result.parsed, dict):
        return None
    grade = result.parsed.get("grade")
    if isinstance(grade, bool) or not isinstance(grade, int) or not 0 <= grade <= 10:
        return None
    return float(grade)
