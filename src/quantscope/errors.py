"""A small exception hierarchy; the CLI maps each to a one-line message and an exit code."""


class QuantscopeError(Exception):
    """Base class: the message is one actionable line (what failed, why, what to do next)."""

    exit_code = 2


class UserError(QuantscopeError):
    """Bad input from the user: a missing path, an unknown name, a bad option."""


class FormatError(QuantscopeError):
    """A file is not what it claims to be (truncated GGUF, corrupt safetensors, bad JSON)."""


class UnsafeArtifactError(QuantscopeError):
    """A file would execute code when loaded (pickle) and the user did not allow it."""


class StoreError(QuantscopeError):
    """The result store cannot be used as asked (newer schema, locked, corrupt)."""

    exit_code = 3


class RunFailed(QuantscopeError):
    """A measured run ended without an ok result."""

    exit_code = 1
