"""Training: pretraining phi-1-base on CodeTextbook and fine-tuning it into phi-1.

One package for chapters 4 and 5 of the book, one job per module:

- ``presets``: the model family on ``transformers``' ``PhiForCausalLM`` (phi-1, phi-1-small and
  the small presets of the CPU profiles), with parameter counts;
- ``tokenizer``: the paper's tokenizer, or a byte-level BPE trained offline on CodeTextbook;
- ``packing``: documents joined with ``<|endoftext|>``, tokenized once into a memory-mapped file
  and cut into fixed-length sequences, as the paper packs them;
- ``batches``: which sequences each process reads at each step (the data position of a resume);
- ``loop``: one training loop for every profile (CPU, one GPU, many GPUs through ``accelerate``
  with DDP, FSDP or DeepSpeed), with exact resume from checkpoints;
- ``flops`` and ``metrics``: FLOPs per token, MFU, and the CSV/TensorBoard log;
- ``heldout`` and ``completions``: held-out loss and held-out exercise pass rates;
- ``stages``: the run-store stages (``tokenizer``, ``tokens_*``, ``pretrain*``, ``finetune``,
  ``training_ablation``);
- ``run``: the command-line entry point (``python -m phi1lib.training.run`` / ``phi1 train``).
"""
