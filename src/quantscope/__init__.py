"""quantscope: which quantization should I ship, and what does it cost?"""

__version__ = "0.1.0"


def load_results(store=None):
    """Every stored run as a pandas DataFrame (see quantscope.api.load_results); pandas loads only here.

    >>> import quantscope
    >>> df = quantscope.load_results()  # doctest: +SKIP
    """
    from quantscope.api import load_results as _load

    return _load(store)
