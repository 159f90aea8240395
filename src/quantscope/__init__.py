"""quantscope: which quantization should I ship, and what does it cost?"""

__version__ = "0.1.0"
