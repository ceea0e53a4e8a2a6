"""Evaluation: HumanEval, MBPP and the book's new problems, scored by pass@k and an LLM judge.

Modules, in the order chapter 6 introduces them: ``problems`` (one shape for every benchmark),
``humaneval``, ``mbpp`` and ``benchmarks`` (loading), ``passk`` (the estimator), ``generation``
(completions from any causal LM), ``grading`` (running them in the sandbox), ``judge`` (the
0-10 LLM grade of Table 2), ``stage`` (the ``evaluate`` pipeline stage) and ``cli``
(``phi1 eval``).
"""
