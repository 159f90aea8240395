"""Backends by name. Entries are lazy "module:attr" strings: nothing heavy is imported until used."""

from quantscope.registry import Registry

BACKENDS: Registry = Registry("backend")
BACKENDS.add("torch", "quantscope.backends.torch.backend:TorchBackend")
BACKENDS.add("torchao", "quantscope.backends.torchao.backend:TorchaoBackend")
BACKENDS.add("bnb", "quantscope.backends.bnb.backend:BnbBackend")
BACKENDS.add("ort", "quantscope.backends.ort.backend:OrtBackend")
BACKENDS.add("llamacpp", "quantscope.backends.llamacpp.backend:LlamaCppBackend")


def get_backend(name: str):
    """A fresh backend instance by name (UserError with a near-name hint on a typo)."""
    return BACKENDS.get(name)()
