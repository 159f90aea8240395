"""`quantscope run` with a quantization policy, in a subprocess on synthetic:tiny-llama: the policy is
part of the stored key, and the overridden modules really kept their weights unquantized."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from quantscope.spec import ModelSpec, Override, QualitySpec, QuantSpec, RunSpec, WorkloadSpec
from quantscope.store import Store

TINY = ("--model", "synthetic:tiny-llama", "--no-quality", "-p", "8", "-g", "4", "--min-reps", "1",
        "--max-reps", "1", "--warmup", "0")


def qs(*args: str, store: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "QUANTSCOPE_STORE": str(store)}
    return subprocess.run([sys.executable, "-m", "quantscope.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def expected_spec() -> RunSpec:
    from quantscope.sweep.specs import QUICK_MAX_SECONDS, QUICK_QUALITY_SECONDS, QUICK_QUALITY_TOKENS

    return RunSpec(model=ModelSpec("synthetic", "tiny-llama"), backend="torchao",
                   quant=QuantSpec("fp32", "int8-weight-only", overrides=(Override("re:.*mlp.*"),)),
                   workload=WorkloadSpec(prompt_tokens=8, gen_tokens=4, warmup=0, min_reps=1, max_reps=1,
                                         max_seconds=QUICK_MAX_SECONDS),
                   quality=QualitySpec(enabled=False, max_tokens=QUICK_QUALITY_TOKENS,
                                       max_seconds=QUICK_QUALITY_SECONDS))


@pytest.mark.integration
def test_a_two_module_policy_runs_and_is_stored_with_the_policy_in_its_key(tmp_path):
    store = tmp_path / "s.sqlite"
    p = qs("run", *TINY, "--backend", "torchao", "--quant", "int8-weight-only", "--override", "re:.*mlp.*=none",
           "--store", str(store), store=store)
    assert p.returncode == 0, p.stderr
    want = expected_spec()
    assert f"key {want.key_hash()}" in p.stdout
    with Store(store, readonly=True) as st:
        ((_, result),) = st.results()
    assert result.status == "ok", result.reason
    assert result.spec == want and result.spec.key_hash() == want.key_hash()
    plain = RunSpec(model=want.model, backend="torchao", quant=QuantSpec("fp32", "int8-weight-only"),
                    workload=want.workload, quality=want.quality)
    assert plain.key_hash() != want.key_hash()
    modules = result.info["quant_modules"]
    mlp = {n: m for n, m in modules.items() if ".mlp." in n}
    attn = {n: m for n, m in modules.items() if ".self_attn." in n}
    assert len(mlp) == 6 and len(attn) == 8  # tiny-llama: 2 layers x (3 mlp + 4 attention) Linears
    assert all(m == {"config": "none", "weight": "Parameter"} for m in mlp.values()), mlp
    assert all(m["config"] == "int8-weight-only" and m["weight"] != "Parameter" for m in attn.values()), attn
    assert modules["lm_head"]["config"] == "none"  # the default leaves the output embedding alone
    assert result.info["quantized_linears"] == 8
    assert result.info["policy"] == ["re:.*mlp.*=none"]


@pytest.mark.integration
def test_a_pattern_that_matches_no_module_fails_the_run_with_the_reason(tmp_path):
    store = tmp_path / "s.sqlite"
    p = qs("run", *TINY, "--backend", "torchao", "--quant", "int8-weight-only", "--override", "mlp=none",
           store=store)
    assert p.returncode == 2  # the input's mistake, found once the model was loaded: a usage error (run.py)
    with Store(store, readonly=True) as st:
        ((_, result),) = st.results()
    assert result.status == "failed" and "override 'mlp' matches no quantizable module" in result.reason


@pytest.mark.unit
@pytest.mark.parametrize("args, needle", [
    (("--opt", "bogus=1"), "torch: unknown option 'bogus'. Valid: compile"),
    (("--backend", "ort", "--opt", "kvcache=false"), "Did you mean 'kv_cache'?"),
    (("--qparam", "group_size=32"), "--quant none takes no --qparam"),
    (("--backend", "torchao", "--quant", "int8-weight-only", "--override", "lm_head=nf4"), "'nf4' is a bnb method"),
    (("--backend", "ort", "--quant", "int4", "--qparam", "blocksize=16"), "Did you mean 'block_size'?"),
])
def test_unknown_options_and_params_are_one_line_errors_before_any_work(tmp_path, args, needle):
    p = qs("run", *TINY, *args, store=tmp_path / "s.sqlite")
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "s.sqlite").exists() or "stored" not in p.stdout


@pytest.mark.unit
def test_run_help_lists_the_registered_backends_and_methods(tmp_path):
    p = qs("run", "--help", store=tmp_path / "s.sqlite")
    text = " ".join(p.stdout.split())
    assert "more as they land" not in text
    for name in ("torchao", "bnb", "ort", "llamacpp", "int4-weight-only", "nf4", "q8_0", "--override", "--policy"):
        assert name in text, name


@pytest.mark.unit
def test_a_policy_file_is_read_and_checked_before_any_work(tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('quant = "int8-weight-only"\n[[override]]\npattern = "lm_head"\nquant = "nf4"\n')
    p = qs("run", *TINY, "--backend", "torchao", "--policy", str(policy), store=tmp_path / "s.sqlite")
    assert p.returncode == 2 and "override lm_head: 'nf4' is a bnb method" in p.stderr, p.stderr
    p = qs("run", *TINY, "--backend", "torchao", "--quant", "int8-dynamic", "--policy", str(policy),
           store=tmp_path / "s.sqlite")
    assert p.returncode == 2 and "disagree" in p.stderr, p.stderr
