"""Evaluation: HumanEval, MBPP and the book's new problems, scored by pass@k and an LLM judge.

Modules, in the order chapter 6 introduces them: ``problems`` (one shape for every benchmark),
``humaneval``, ``mbpp`` and ``benchmarks`` (loading; the new problems live in ``data/``),
``passk`` (the unbiased estimator), ``generation`` (completions from any causal LM),
``grading`` (running them in the sandbox), ``harness`` (one model on one benchmark, end to
end), ``judge`` (the 0-10 LLM grade of Table 2, prompt in ``data/judge_solution.toml``),
``stage`` (the ``evaluate`` pipeline stage), ``tables`` and ``figures`` (the chapter's), and
``cli`` (``phi1 eval``). The decontamination checks are in ``phi1lib.decontam``.
"""
