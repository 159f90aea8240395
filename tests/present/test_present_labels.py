"""present.labels: every view names a configuration the same way."""

import pytest
from helpers.results import make_result, make_spec

from quantscope.analysis.summary import summarize
from quantscope.present.labels import config_label, run_label, spec_label
from quantscope.sweep.matrix import Entry

pytestmark = pytest.mark.unit


def test_spec_entry_summary_and_api_name_a_configuration_alike():
    from quantscope.api import _spec_columns

    entry = Entry("ort", "fp32", "int8", options=(("kv_cache", False),))
    spec = entry.spec(make_spec())
    result = make_result(spec)
    names = {entry.label, spec_label(spec), summarize(1, result).label, _spec_columns(1, result)["config"]}
    assert names == {"ort/int8/fp32[scheme=blockwise] kv_cache=False"}  # the pinned scheme shows everywhere


def test_a_runs_label_is_model_configuration_device_then_options_as_stored():
    spec = make_spec("ort", quant="int8", options=(("kv_cache", False),))
    assert spec.label == run_label(spec) == "SmolLM2-135M-Instruct ort/int8/fp32 cpu kv_cache=False"


def test_no_options_no_trailing_space():
    assert config_label("torch", "bf16") == "torch/bf16"
