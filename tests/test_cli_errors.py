"""Every user mistake the parser or a command finds: one line on stderr, exit 2, nothing stored.

Issue 20 found `quantscope` alone, `--versoin` and `run --timeout 0` ending as "internal error"
(typer now vendors click, so `except click.ClickException` no longer caught the parser's errors).
Each case runs the CLI in a subprocess, as a user would.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers.cli import assert_one_line_error, qs

from quantscope.version import __version__

pytestmark = pytest.mark.unit


def test_no_arguments_prints_the_help_not_an_error(tmp_path):
    p = qs(store=tmp_path / "s.sqlite")
    assert p.returncode == 0, p.stderr
    assert "Usage: quantscope" in p.stdout and "sweep" in p.stdout
    assert "error" not in p.stderr


def test_version_prints_the_package_version(tmp_path):
    p = qs("--version", store=tmp_path / "s.sqlite")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"quantscope {__version__}"


# (arguments, words the one line must hold): the parser's own mistakes and the commands' range checks
BAD = [
    (["--versoin"], ["No such option: --versoin", "did you mean --version"]),
    (["results", "--limt", "3"], ["No such option: --limt", "--limit"]),
    (["results", "--format"], ["'--format' requires an argument"]),
    (["run", "-p", "abc"], ["'--prompt-tokens'", "'abc'"]),
    (["compare"], ["Missing argument 'baseline'"]),
    (["bogus-command"], ["No such command 'bogus-command'"]),
    (["results", "--format", "xml"], ["unknown format 'xml'", "json"]),
    (["results", "--limit", "-1"], ["--limit", "-1"]),
    (["run", "--model", "synthetic:tiny-llama", "--timeout", "0"], ["--timeout", "> 0", "got 0"]),
    (["run", "--model", "synthetic:tiny-llama", "--timeout", "-1"], ["--timeout", "got -1"]),
    (["sweep", "--model", "synthetic:tiny-llama", "--timeout", "nan"], ["--timeout", "got nan"]),
    (["run", "--model", "synthetic:tiny-llama", "--gen-tokens", "0"], ["gen_tokens must be >= 1"]),
    (["sweep", "--model", "synthetic:tiny-llama", "--device", "tpu"], ["device 'tpu'", "cpu, cuda"]),
    # refused before any run or its reference starts (issue 12): no tokenizer makes more tokens than bytes
    (["run", "--model", "synthetic:tiny-llama", "--backend", "torchao", "--quant", "smoothquant-w8a8",
      "--qparam", "calib_samples=100000"], ["calibration text has", "bytes", "lower calib_samples"]),
    (["run", "--model", "synthetic:tiny-llama", "--backend", "torchao", "--quant", "smoothquant-w8a8",
      "--qparam", "alpha=1.5"], ["alpha=1.5 is outside [0, 1]"]),
]


@pytest.mark.parametrize(("args", "needles"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_user_mistake_is_one_line_exit_2_and_stores_nothing(tmp_path, args, needles):
    store = tmp_path / "s.sqlite"
    assert_one_line_error(qs(*args, store=store), 2, *needles)
    assert not store.exists()


# Backend options and method parameters are validated against the runtime's typed options and the
# method's parameters (backends/<runtime>/options.py, methods/): here only that the CLI says so in one line.
OPTION_CASES = [
    (["--opt", "bogus=1"], ["unknown option 'bogus'", "compile"]),
    (["--qparam", "group_size=32"], ["takes no --qparam", "group_size"]),
]


@pytest.mark.parametrize(("extra", "needles"), OPTION_CASES, ids=[" ".join(a) for a, _ in OPTION_CASES])
def test_unknown_backend_option_or_method_param_is_refused(tmp_path, extra, needles):
    store = tmp_path / "s.sqlite"
    p = qs("run", "--model", "synthetic:tiny-llama", "--backend", "torch", "--no-quality", *extra, store=store)
    assert_one_line_error(p, 2, *needles)
    assert not store.exists()


def test_a_real_bug_is_still_an_internal_error_with_debug_traceback(tmp_path):
    # A command that raises something no user input explains: "internal error", exit 1, and the
    # traceback only with --debug.
    body = ("import sys; from quantscope import cli\n"
            "@cli.app.command('boom')\n"
            "def boom() -> None:\n"
            "    raise RuntimeError('a bug')\n"
            "sys.argv = ['quantscope', 'boom', *sys.argv[1:]]\n"
            "cli.main()\n")
    for extra, traceback_shown in (([], False), (["--debug"], True)):
        p = subprocess.run([sys.executable, "-c", body, *extra], capture_output=True, text=True, timeout=120)
        assert p.returncode == 1, p.stderr
        assert "quantscope: internal error: RuntimeError: a bug" in p.stderr
        assert ("Traceback" in p.stderr) is traceback_shown


# Step 2 of issue 20: a backend typo in the sweep's flags or its TOML matrix, and a workload longer than
# the model's context, are refused before any run (they used to become "unsupported" rows, exit 0).
def test_sweep_backend_typo_is_refused_before_any_run(tmp_path):
    store = tmp_path / "s.sqlite"
    p = qs("sweep", "--model", "synthetic:tiny-llama", "--no-quality", "--backend", "trch", "--no-report",
           store=store)
    assert_one_line_error(p, 2, "unknown backend 'trch'", "Did you mean 'torch'")
    assert not store.exists() and "sweep:" not in p.stdout


def test_matrix_backend_typo_names_the_entry_and_is_refused_before_any_run(tmp_path):
    store = tmp_path / "s.sqlite"
    matrix = tmp_path / "m.toml"
    matrix.write_text('[[config]]\nbackend = "torch"\n\n[[config]]\nbackend = "torcha0"\nquant = "int8-weight-only"\n')
    p = qs("sweep", "--model", "synthetic:tiny-llama", "--no-quality", "--matrix", str(matrix), "--no-report",
           store=store)
    assert_one_line_error(p, 2, "config #2", "unknown backend 'torcha0'", "Did you mean 'torchao'")
    assert not store.exists()


def test_a_matrix_accelerator_on_the_local_executor_is_refused_before_any_run(tmp_path):
    store = tmp_path / "s.sqlite"
    matrix = tmp_path / "m.toml"
    matrix.write_text('[[config]]\nbackend = "torch"\ndtype = "bf16"\naccelerator = "H100"\n')
    p = qs("sweep", "--model", "synthetic:tiny-llama", "--no-quality", "--matrix", str(matrix), "--no-report",
           store=store)
    assert_one_line_error(p, 2, "torch/bf16 asks for accelerator 'H100'", "--executor ray")
    assert not store.exists()


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_prompt_longer_than_the_model_context_is_refused_with_the_context(tmp_path, command):
    store = tmp_path / "s.sqlite"
    extra = ["--no-report"] if command == "sweep" else []
    p = qs(command, "--model", "synthetic:tiny-llama", "--no-quality", "-p", "100000", "-g", "64", *extra, store=store)
    assert_one_line_error(p, 2, "100064 tokens", "context of synthetic:tiny-llama, 2048 tokens",
                          "--prompt-tokens 1984")
    assert not store.exists()


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_offline_flag_keeps_to_the_cache_with_a_one_line_error(tmp_path, command):
    env = {"HF_HUB_OFFLINE": "0", "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HOME": str(tmp_path / "hf")}
    p = qs(command, "--model", "acme/absent-model", "--offline", "--no-quality", store=tmp_path / "s.sqlite",
           env=env)
    assert_one_line_error(p, 2, "model acme/absent-model is not in the local Hugging Face cache",
                          "this machine is offline")
    assert not (tmp_path / "s.sqlite").exists()
