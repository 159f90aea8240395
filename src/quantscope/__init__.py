"""quantscope: which quantization should I ship, and what does it cost?"""

from quantscope.version import __version__

__all__ = ["__version__", "load_results", "measure"]


def load_results(store=None):
    """Every stored run as a pandas DataFrame (see quantscope.api.load_results); pandas loads only here.

    >>> import quantscope
    >>> df = quantscope.load_results()  # doctest: +SKIP
    """
    from quantscope.api import load_results as _load

    return _load(store)


def measure(spec, store=None, timeout: float = 900.0):
    """Measure a RunSpec (with its quantization policy) in an isolated worker and store it: (run id, Result).

    See quantscope.api.measure; nothing heavy is imported here.
    """
    from quantscope.api import measure as _measure

    return _measure(spec, store, timeout)
