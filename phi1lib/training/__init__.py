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
- ``heldout``: held-out loss, in total and per sequence;
- ``stages``: the run-store stages (``tokenizer``, ``tokens_*``, ``pretrain*``, ``finetune``);
- ``ablation_models``, ``ablation``, ``ablation_stats`` and ``ablation_report``: Figure 2.1's
  ablation, every arm at several seeds, pretrained and fine-tuned, scored and compared with
  intervals over seeds and problems (``ablation_models``, ``training_ablation``);
- ``run``: the command-line entry point (``python -m phi1lib.training.run`` / ``phi1 train``).
"""
