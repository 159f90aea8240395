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


def test_a_command_line_imports_only_the_command_it_names():
    # `results` on a big store must start fast: the other commands' modules (and the method and runtime
    # registries their help texts read) stay unimported; --help still lists every command.
    code = ("import sys; from quantscope import cli; sys.argv = ['quantscope', 'results', '--help']\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print('LOADED', ' '.join(sorted(m for m in sys.modules if m.startswith('quantscope.commands.')"
            " or m == 'quantscope.methods')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "LOADED"
    from quantscope.cli import COMMANDS, commands_for

    assert commands_for(["--debug", "run", "-m", "x"]) == ["run"]
    assert commands_for(["--help"]) is None and commands_for(["runn"]) is None
    listed = subprocess.run([sys.executable, "-m", "quantscope", "--help"], capture_output=True, text=True)
    assert all(name in listed.stdout for name in COMMANDS)
