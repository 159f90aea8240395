"""Backends by name. Entries are lazy "module:attr" strings: nothing heavy is imported until used.

A runtime is one package here (backends/<runtime>/: backend.py, options.py, convert.py) plus one line
below; a runtime outside quantscope registers itself from a plug-in module (see quantscope/plugins.py).
"""

from quantscope.plugins import load_plugins
from quantscope.registry import Registry

BACKENDS: Registry = Registry("backend", before_lookup=load_plugins)
BACKENDS.add("torch", "quantscope.backends.torch.backend:TorchBackend")
BACKENDS.add("torchao", "quantscope.backends.torchao.backend:TorchaoBackend")
BACKENDS.add("bnb", "quantscope.backends.bnb.backend:BnbBackend")
BACKENDS.add("ort", "quantscope.backends.ort.backend:OrtBackend")
BACKENDS.add("llamacpp", "quantscope.backends.llamacpp.backend:LlamaCppBackend")
BACKENDS.add("ortgenai", "quantscope.backends.ortgenai.backend:OrtGenaiBackend")

# Each backend's typed options (light modules): `--opt` is parsed and checked against them.
OPTIONS: Registry = Registry("backend options")
for _name in ("torch", "torchao", "bnb"):
    OPTIONS.add(_name, "quantscope.backends.torch.options:TorchOptions")
OPTIONS.add("ort", "quantscope.backends.ort.options:OrtOptions")
OPTIONS.add("llamacpp", "quantscope.backends.llamacpp.options:LlamaCppOptions")
OPTIONS.add("ortgenai", "quantscope.backends.ortgenai.options:OrtGenaiOptions")


def parse_options(backend: str, options):
    """`options` as the backend's typed options; an unknown name is a UserError naming the near one.

    >>> parse_options("torch", {"compile": True})
    TorchOptions(compile=True)
    """
    from quantscope.methods.coerce import check_names

    if backend not in OPTIONS:
        check_names(backend, dict(options), (), "option")
        return None
    return OPTIONS.get(backend).parse(backend, options)


def get_backend(name: str):
    """A fresh backend instance by name (UserError with a near-name hint on a typo)."""
    return BACKENDS.get(name)()
