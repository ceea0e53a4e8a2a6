"""Chapter 1, filtering real code to "textbook quality" (paper §2 and §2.1).

The stages, in pipeline order: ``code_corpus`` (read real code) -> ``raw_code`` (deduplicated;
the unfiltered corpus of the ablation) -> ``code_judgements`` (the teacher's educational-value
labels on a sample) and ``code_embeddings`` -> ``edu_classifier`` (a random forest on the
embeddings) -> ``filtered_code`` (every file scored, the educational ones kept).
"""
