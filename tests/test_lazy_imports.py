import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

HEAVY = ("torch", "transformers", "onnxruntime", "llama_cpp", "bitsandbytes", "torchao")


def test_import_quantscope_and_cli_loads_no_heavy_runtime():
    code = ("import sys, quantscope, quantscope.cli; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
