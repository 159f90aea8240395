"""Sweeps: the matrix of configurations (matrix.py), the resumable run loop (execute.py) and its display."""
