"""torchao runtime: PyTorch-native quantization of the transformers model (backend.py)."""
