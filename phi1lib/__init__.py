"""phi1lib: the library behind the phi-1 book.

Every chapter of the book imports this package; its modules follow the paper's pipeline:
profiles and the run store (foundations), the teacher, the sandbox, then the stages
(filtering, synthesis, training, evaluation, analysis).
"""

__version__ = "0.1.0"
