"""The paper's published numbers, kept in one place with their sources.

Every number here is copied from "Textbooks Are All You Need" (Gunasekar et al., 2023,
arXiv:2306.11644, citation key ``gunasekar2023textbooks``); each comment names the table or section
it comes from. Chapters print these *beside* the numbers our own runs compute, never in their
place. Introduced in chapter "The paper at a glance".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

CITATION_KEY = "gunasekar2023textbooks"
ARXIV_ID = "2306.11644"


@dataclass(frozen=True)
class ModelResult:
    """One row of the paper's Table 1 (self-reported pass@1 scores, in percent)."""

    date: str
    model: str
    params: float | None  # parameters; None where the paper says N.A.
    train_tokens: float | None  # tokens seen in training; None where the paper says N.A.
    humaneval: float
    mbpp: float | None

    @property
    def is_phi1(self) -> bool:
        return self.model == "phi-1"


def _b(value: float) -> float:
    return value * 1e9


def _m(value: float) -> float:
    return value * 1e6


# Table 1 of the paper. Sizes and token counts as the paper prints them.
TABLE1: tuple[ModelResult, ...] = (
    ModelResult("2021 Jul", "Codex-300M", _m(300), _b(100), 13.2, None),
    ModelResult("2021 Jul", "Codex-12B", _b(12), _b(100), 28.8, None),
    ModelResult("2022 Mar", "CodeGen-Mono-350M", _m(350), _b(577), 12.8, None),
    ModelResult("2022 Mar", "CodeGen-Mono-16.1B", _b(16.1), _b(577), 29.3, 35.3),
    ModelResult("2022 Apr", "PaLM-Coder", _b(540), _b(780), 35.9, 47.0),
    ModelResult("2022 Sep", "CodeGeeX", _b(13), _b(850), 22.9, 24.4),
    ModelResult("2022 Nov", "GPT-3.5", _b(175), None, 47.0, None),
    ModelResult("2022 Dec", "SantaCoder", _b(1.1), _b(236), 14.0, 35.0),
    ModelResult("2023 Mar", "GPT-4", None, None, 67.0, None),
    ModelResult("2023 Apr", "Replit", _b(2.7), _b(525), 21.9, None),
    ModelResult("2023 Apr", "Replit-Finetuned", _b(2.7), _b(525), 30.5, None),
    ModelResult("2023 May", "CodeGen2-1B", _b(1), None, 10.3, None),
    ModelResult("2023 May", "CodeGen2-7B", _b(7), None, 19.1, None),
    ModelResult("2023 May", "StarCoder", _b(15.5), _b(1000), 33.6, 52.7),
    ModelResult("2023 May", "StarCoder-Prompted", _b(15.5), _b(1000), 40.8, 49.5),
    ModelResult("2023 May", "PaLM 2-S", None, None, 37.6, 50.0),
    ModelResult("2023 May", "CodeT5+ 2B", _b(2), _b(52), 24.2, None),
    ModelResult("2023 May", "CodeT5+ 16B", _b(16), _b(52), 30.9, None),
    ModelResult("2023 May", "InstructCodeT5+", _b(16), _b(52), 35.0, None),
    ModelResult("2023 Jun", "WizardCoder", _b(16), _b(1000), 57.3, 51.8),
    ModelResult("2023 Jun", "phi-1", _b(1.3), _b(7), 50.6, 55.5),
)


def table1_records() -> list[dict]:
    """Table 1 as plain dicts (for ``pandas.DataFrame``)."""
    return [asdict(row) for row in TABLE1]


# The phi-1 family (paper, abstract, §2.1 and Table 1): HumanEval pass@1 in percent.
PHI1_FAMILY = {
    "phi-1": {"params": _b(1.3), "tokens_seen": _b(51), "humaneval": 50.6, "mbpp": 55.5},
    "phi-1-base": {"params": _b(1.3), "tokens_seen": _b(51), "humaneval": 29.0, "mbpp": None},
    "phi-1-small": {"params": _m(350), "tokens_seen": None, "humaneval": 45.0, "mbpp": None},
}

# The data budget (paper §2 and §2.2), in tokens unless said otherwise.
DATA_BUDGET = {
    "raw_stack_and_so_tokens": _b(35),
    "raw_files": 35e6,
    "filtered_tokens": _b(6),
    "textbook_tokens": _b(1),  # "less than 1B"
    "exercise_tokens": _m(180),  # "less than 180M"
    "exercise_count": 879_500,
    "unique_tokens_total": _b(7),
    "judge_labels": 100_000,
}

# Filtering alone on the 350M model (paper §2.1, HumanEval pass@1 in percent).
FILTER_ABLATION_350M = (
    {"data": "The Stack + StackOverflow (unfiltered)", "steps": 96_000, "humaneval": 12.19},
    {"data": "Filtered subset", "steps": 36_000, "humaneval": 17.68},
    {"data": "CodeTextbook (filtered + synthetic textbooks)", "steps": 36_000, "humaneval": 20.12},
)

# Table 2: 50 unconventional problems graded by GPT-4 (percent), beside HumanEval.
TABLE2 = (
    {
        "model": "CodeGen-Mono-350M",
        "size": "350M",
        "tokens": "577B",
        "gpt4_score": 19,
        "humaneval": 13,
    },
    {
        "model": "CodeGen-Mono-16.1B",
        "size": "16.1B",
        "tokens": "577B",
        "gpt4_score": 38,
        "humaneval": 29,
    },
    {"model": "Replit", "size": "2.7B", "tokens": "525B", "gpt4_score": 37, "humaneval": 22},
    {"model": "StarCoder", "size": "15.5B", "tokens": "1T", "gpt4_score": 51, "humaneval": 34},
    {"model": "phi-1-base", "size": "1.3B", "tokens": "7B", "gpt4_score": 37, "humaneval": 29},
    {"model": "phi-1-small", "size": "350M", "tokens": "7B", "gpt4_score": 45, "humaneval": 45},
    {"model": "phi-1", "size": "1.3B", "tokens": "7B", "gpt4_score": 52, "humaneval": 51},
)

# Table 3: HumanEval split by similarity to CodeExercises at match rate tau (percent pass@1).
TABLE3 = (
    {
        "tau": 0.95,
        "subset": "similar",
        "problems": 71,
        "phi1": 81.7,
        "phi1_pruned": 74.6,
        "starcoder_prompted": 57.7,
    },
    {
        "tau": 0.95,
        "subset": "non-similar",
        "problems": 93,
        "phi1": 26.9,
        "phi1_pruned": 32.3,
        "starcoder_prompted": 29.0,
    },
    {
        "tau": 0.95,
        "subset": "total",
        "problems": 164,
        "phi1": 50.6,
        "phi1_pruned": 50.6,
        "starcoder_prompted": 41.5,
    },
    {
        "tau": 0.90,
        "subset": "similar",
        "problems": 93,
        "phi1": 63.4,
        "phi1_pruned": 51.6,
        "starcoder_prompted": 48.4,
    },
    {
        "tau": 0.90,
        "subset": "non-similar",
        "problems": 71,
        "phi1": 33.8,
        "phi1_pruned": 36.6,
        "starcoder_prompted": 32.4,
    },
    {
        "tau": 0.90,
        "subset": "total",
        "problems": 164,
        "phi1": 50.6,
        "phi1_pruned": 45.1,
        "starcoder_prompted": 41.5,
    },
    {
        "tau": 0.85,
        "subset": "similar",
        "problems": 106,
        "phi1": 62.3,
        "phi1_pruned": 52.8,
        "starcoder_prompted": 47.2,
    },
    {
        "tau": 0.85,
        "subset": "non-similar",
        "problems": 58,
        "phi1": 29.3,
        "phi1_pruned": 34.5,
        "starcoder_prompted": 31.0,
    },
    {
        "tau": 0.85,
        "subset": "total",
        "problems": 164,
        "phi1": 50.6,
        "phi1_pruned": 46.3,
        "starcoder_prompted": 41.5,
    },
    {
        "tau": 0.80,
        "subset": "similar",
        "problems": 116,
        "phi1": 59.5,
        "phi1_pruned": 52.6,
        "starcoder_prompted": 45.7,
    },
    {
        "tau": 0.80,
        "subset": "non-similar",
        "problems": 48,
        "phi1": 29.2,
        "phi1_pruned": 27.1,
        "starcoder_prompted": 31.2,
    },
    {
        "tau": 0.80,
        "subset": "total",
        "problems": 164,
        "phi1": 50.6,
        "phi1_pruned": 45.1,
        "starcoder_prompted": 41.5,
    },
)

# Pruning CodeExercises removed between these many problems as tau went from 0.95 to 0.8.
PRUNED_EXERCISES = {"tau_0.95": 42_500, "tau_0.80": 354_000, "total": 879_500}

# Training recipe (paper §2.3). The profiles phi-1-small and phi-1 carry these values.
HYPERPARAMETERS = {
    "pretrain": {
        "global_batch_sequences": 1024,
        "seq_len": 2048,
        "peak_lr": 1e-3,
        "warmup_steps": 750,
        "weight_decay": 0.1,
        "dropout": 0.1,
        "precision": "fp16",
        "steps_planned": 36_000,
        "steps_kept": 24_000,
    },
    "finetune": {
        "global_batch_sequences": 256,
        "seq_len": 2048,
        "peak_lr": 1e-4,
        "warmup_steps": 50,
        "weight_decay": 0.01,
        "dropout": 0.1,
        "precision": "fp16",
        "steps": 6_000,
    },
    "hardware": {"gpus": "8 x A100", "pretrain_gpu_hours": 770, "finetune_hours": 7},
}

# Architecture (paper §2.3), as the paper states it.
ARCHITECTURE = {
    "phi-1": {
        "layers": 24,
        "hidden": 2048,
        "mlp": 8192,
        "heads": 32,
        "head_dim": 64,
        "rotary_dim": 32,
    },
    "phi-1-small": {
        "layers": 20,
        "hidden": 1024,
        "mlp": 4096,
        "heads": 16,
        "head_dim": 64,
        "rotary_dim": 32,
    },
}

# Emergent abilities after fine-tuning (paper §3 and Appendix A): the same prompt
# given to phi-1, phi-1-base and phi-1-small, judged qualitatively by the authors (no numbers).
EMERGENT_EXAMPLES = (
    {
        "example": "three players, random numbers, divisibility by floor(sqrt) over 30 rounds",
        "section": "§3.1",
        "phi-1": "correct",
        "phi-1-base": "misses the logical relations between steps",
        "phi-1-small": "partly understands; the code is wrong",
    },
    {
        "example": "PyGame: a ball that jitters inside bounds and resets on space",
        "section": "§3.2",
        "phi-1": "right PyGame calls, follows the logic",
        "phi-1-base": "plausible API calls, wrong logic",
        "phi-1-small": "follows the logic, invents wrong calls",
    },
    {
        "example": "Tkinter: text field, Submit/Recover buttons, global string, 'pew' rule",
        "section": "§3.2",
        "phi-1": "a working GUI (one string copied wrongly)",
        "phi-1-base": "made-up calls, loops adding buttons",
        "phi-1-small": "made-up API",
    },
    {
        "example": "chat mode: Student/TA on pyplot resolution and rotation",
        "section": "§3.2",
        "phi-1": "answers in chat form with steps and example code",
        "phi-1-base": "short, vague suggestion of API calls",
        "phi-1-small": "repeats the question",
    },
    {
        "example": "numpy index selection with union / not-in conditions",
        "section": "App. A.1",
        "phi-1": "correct",
        "phi-1-base": "mixes up elements and indices",
        "phi-1-small": "wrong",
    },
    {
        "example": "PyTorch: SVD-based top-k gradient update step",
        "section": "App. A.2",
        "phi-1": "correct torch code",
        "phi-1-base": "meaningless attribute definitions",
        "phi-1-small": "numpy SVD on a tensor; assigns where it should add",
    },
    {
        "example": "pyplot: line animation that changes colour when x > 11",
        "section": "App. A.2",
        "phi-1": "correct FuncAnimation",
        "phi-1-base": "right template, no update logic",
        "phi-1-small": "a badly done scatter plot instead of a line",
    },
)

# The limits the paper lists (paper Appendix B and §6), which chapter 7's robustness
# and counting probes test.
LIMITATIONS = (
    {
        "limit": "prompt length",
        "what the paper saw": "a 4-layer network prompt fails where 3 "
        "layers work; adding `import torch` fixes it",
        "section": "App. B",
    },
    {
        "limit": "natural-language wording",
        "what the paper saw": "ambiguous words ('unchanged') "
        "and numbered options make it invent moves",
        "section": "App. B",
    },
    {
        "limit": "grammatical mistakes",
        "what the paper saw": "scores drop a lot on prompts with grammatical errors",
        "section": "§6",
    },
    {
        "limit": "counting and spatial reasoning",
        "what the paper saw": "a Tkinter layout with two "
        "text fields and three buttons gets an extra field and misplaced buttons",
        "section": "App. B",
    },
    {
        "limit": "specific APIs and rare packages",
        "what the paper saw": "lacks knowledge of less common packages; Python only",
        "section": "§6",
    },
)

# The n-gram decontamination check (paper §5.1): HumanEval docstrings against
# every CodeExercises entry, 13-word runs. Four problems matched; all four were false positives
# (shared stock phrases attached to different tasks).
NGRAM_DECONTAMINATION = {"n": 13, "humaneval_problems_matched": 4, "false_positives": 4}
