"""quantscope's version, in a module of its own so that low layers (env, store) read it without
importing the package's top (which offers the Python API)."""

__version__ = "0.1.0"
