"""Converted artifacts (ONNX graphs, GGUF files) kept in a content-addressed cache; see cache.py."""
