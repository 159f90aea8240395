"""A fake runtime as a plug-in: one folder, registered on import, found by name in the worker too.

Name it in $QUANTSCOPE_PLUGINS (with tests/ on PYTHONPATH) and `--backend fake` runs it: this is what
adding a runtime to quantscope costs, shown by tests/sweep/test_fake_runtime.py.
"""

from quantscope.backends import BACKENDS

BACKENDS.add("fake", "helpers.fake_runtime.backend:FakeBackend")
