"""The `>>>` examples in quantscope's modules run as tests, so an example that drifts from the code fails.

Every module whose source holds an example is collected; an example that needs a model or a network
says `# doctest: +SKIP` in place.
"""

import doctest
import importlib
from pathlib import Path

import pytest

import quantscope

pytestmark = pytest.mark.unit

SRC = Path(quantscope.__file__).resolve().parent


def modules_with_examples() -> list[str]:
    names = []
    for path in sorted(SRC.rglob("*.py")):
        if ">>>" in path.read_text():
            parts = path.relative_to(SRC.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("name", modules_with_examples())
def test_the_examples_in_the_module_hold(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (run it with -s)"
