"""PyTorch (transformers) runtime: backend.py loads and times the model; weights.py counts loaded bytes."""
