"""Training qabot's own models (scripts/train_reranker.py): the data steps, importable and tested.

Nothing in qabot imports it; torch and peft are imported by the training script, never here.
"""
