"""SmoothQuant W8A8 (Xiao et al., ICML 2023) on the torchao backend, written here rather than taken
from a library: those that have it pin other transformers versions, or (torchao's prototype
SmoothQuantConfig) keep the scale per Linear and multiply every activation by it at run time,
where the paper folds it into the preceding norm.

- mappings.py: which norm feeds which Linears, keyed by HF architecture
- smooth.py: max|X_j| observers, eq. 4's scales, the fold, the alpha=auto search
- config.py: the `w8a8` and `smoothquant-w8a8` configs and their calibrated handler

Importing this package registers both methods and imports nothing heavy.
"""

from quantscope.methods.smoothquant.config import W8A8, SmoothQuantW8A8

__all__ = ["SmoothQuantW8A8", "W8A8"]
