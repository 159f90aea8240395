"""ONNX Runtime: backend.py runs the graphs, convert.py exports and quantizes them (cached)."""
