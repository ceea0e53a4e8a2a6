"""The probe suite of chapter 7: prompts for the abilities the paper says emerged after
fine-tuning, and for the limits it lists, each with an automatic check."""
