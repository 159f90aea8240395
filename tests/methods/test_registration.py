"""Built-in configs register when `quantscope.methods` is imported: checked in fresh interpreters,
where no other test has imported a config module first (the bug this guards against: "not one of ;")."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_config_from_dict_works_first_thing_in_a_fresh_process():
    code = ("import quantscope.methods as m; "
            "print(m.config_from_dict({'type': 'nf4', 'version': 1, 'params': {'double_quant': True}}))")
    assert fresh(code).strip() == "NF4(double_quant=True, compute_dtype='auto')"


def test_every_registered_config_round_trips_through_its_dict_form_in_a_fresh_process():
    code = """
import json
from quantscope.methods import METHODS, config_from_dict
seen = []
for backend, name, cls in METHODS.items():
    cfg = cls()
    d = json.loads(json.dumps(cfg.to_dict()))  # through JSON, as stored
    back = config_from_dict(d)
    assert back == cfg and type(back) is cls, (backend, name)
    seen.append([backend, name])
print(json.dumps(seen))
"""
    seen = json.loads(fresh(code))
    backends = {b for b, _ in seen}
    assert backends == {"torchao", "bnb", "ort", "ortgenai", "llamacpp"}
    assert ["bnb", "int8"] in seen and ["ort", "int8"] in seen and ["llamacpp", "q4_k_m"] in seen
    assert len(seen) == len({tuple(x) for x in seen})


def test_llamacpp_types_are_the_installed_librarys_file_types():
    pytest.importorskip("llama_cpp")
    from quantscope.backends.llamacpp.convert import llama_ftypes
    from quantscope.methods import method_names

    assert set(method_names("llamacpp")) == set(llama_ftypes()) - {"guessed"}
