"""Analysis of what the pipeline produced: the abilities that emerged after fine-tuning
(chapter 7, :mod:`phi1lib.analysis.probes`) and the diversity and redundancy of every dataset
(chapter 8, :mod:`phi1lib.analysis.diversity` and :mod:`phi1lib.analysis.ast_shapes`).
"""
