"""`run`'s exit code says what kind of end the run had: a worker that refused the input once the model
was loaded (a UserError: an architecture smoothquant has no mapping for, a calibration text that the
model's tokenizer cuts shorter than asked) is a usage error, exit 2, like one the parser finds."""

from __future__ import annotations

import pytest
from helpers.results import make_result

import quantscope.api
from quantscope.commands.run import measure_and_store

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("status", "exception", "code"), [
    ("failed", "UserError", 2), ("failed", "RuntimeError", 1), ("oom", "MemoryError", 1),
    ("unsupported", "Unsupported", 0), ("ok", None, 0)])
def test_the_exit_code_follows_the_status_and_a_refused_input_is_2(tmp_path, monkeypatch, status, exception,
                                                                   code):
    result = make_result(status=status, info={"exception": exception} if exception else None,
                         reason=f"{exception}: something" if exception else None)
    monkeypatch.setattr(quantscope.api, "measure", lambda spec, *a, **k: (7, result))
    assert measure_and_store(result.spec, tmp_path / "s.sqlite", 60.0, quiet=True) == code
