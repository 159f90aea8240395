"""lm-eval around a loaded tiny model: the task result is stored with its per-document samples and
agrees with lm-eval's own figures; an unsupported runtime says why; a dataset that cannot be had
offline and a missing lm-eval are one line each."""

from __future__ import annotations

import math
import types

import pytest

from quantscope.errors import UserError
from quantscope.quality.tasks import cloze, harness
from quantscope.quality.tasks.outcomes import accuracy, describe_tasks, task_results
from quantscope.result import Result
from quantscope.spec import ModelSpec, RunSpec, TaskSpec

pytestmark = pytest.mark.integration
LIMIT = 6


def byte_tokenizer():
    """A byte-level BPE with no merges (256 byte tokens + <eos>), built in memory: no file, no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    vocab["<eos>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", bos_token="<eos>")


@pytest.fixture(scope="module")
def tiny():
    """A 2-layer Llama with random weights and tied embeddings, and the byte tokenizer."""
    pytest.importorskip("lm_eval")
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = byte_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    return LlamaForCausalLM(config).eval(), tok


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_the_task_result_is_stored_with_its_samples_and_matches_lm_evals_figures(tiny, offline):
    from helpers.results import make_env

    from quantscope.quality.tasks.outcomes import task_measurements
    from quantscope.store import Store

    model, tok = tiny
    out, own = harness.evaluate(model, tok, (cloze.TASK,), LIMIT)
    ms = task_measurements(out, LIMIT, own, harness.require_lm_eval())
    assert [m.name for m in ms] == [f"task:{cloze.TASK}:acc"]
    m = ms[0]
    assert len(m.samples) == LIMIT and set(m.samples) <= {0.0, 1.0}
    assert m.meta["doc_ids"] == list(range(LIMIT)) and m.meta["dataset_sha256"] == own[cloze.TASK].sha256
    acc, se, n = accuracy(m)
    figures = out["results"][cloze.TASK]
    assert acc == pytest.approx(figures["acc,none"], abs=1e-12) and n == LIMIT
    assert math.isnan(se) and math.isnan(figures["acc_stderr,none"]) or se == pytest.approx(
        figures["acc_stderr,none"], abs=1e-12)
    spec = RunSpec(model=ModelSpec("synthetic", "tiny-llama"), tasks=TaskSpec((cloze.TASK,), LIMIT))
    result = Result(spec=spec, env=make_env(), status="ok", measurements=tuple(ms), info={"tasks": "measured"})
    with Store(offline / "runs.sqlite") as st:
        run_id = st.add(result)
        (_, back), = [row for row in st.results() if row[0] == run_id]
    stored = task_results(back)[(cloze.TASK, "acc")]
    assert stored.samples == m.samples and stored.meta["version"] == cloze.VERSION
    assert any(cloze.TASK in line and "documents" in line for line in describe_tasks(back))


def test_the_wrapper_leaves_a_separately_quantized_head_untied(tiny):
    """HFLM re-ties lm_head to the embedding; the model evaluated must be the one that was timed."""
    torch = pytest.importorskip("torch")
    model, tok = tiny
    head = torch.nn.Parameter(model.lm_head.weight.detach().clone() * 0.5)  # stands for a quantized head
    model.lm_head.weight = head
    try:
        harness.wrap(model, tok)
        assert model.lm_head.weight is head and "tie_weights" not in vars(model)
    finally:
        model.tie_weights()


def test_a_runtime_lm_eval_cannot_drive_gives_the_reason_and_the_speed_row_stands():
    from quantscope.runner.task_step import task_measurements

    ort_like = types.SimpleNamespace(name="ort", model=None, tokenizer=None)
    spec = RunSpec(backend="ort", tasks=TaskSpec((cloze.TASK,)))
    ms, info = task_measurements(ort_like, spec, types.SimpleNamespace(synthetic=False))
    assert ms == [] and info["tasks"].startswith("unsupported: lm-eval evaluates a loaded transformers model")
    assert "ort runtime" in info["tasks"] and "\n" not in info["tasks"]


def test_a_dataset_missing_offline_is_one_line(offline):
    pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    folder = offline / "tasks"
    folder.mkdir()
    (folder / "absent.yaml").write_text(
        "task: quantscope_absent\ndataset_path: quantscope-test/no-such-dataset\noutput_type: loglikelihood\n"
        "test_split: test\ndoc_to_text: '{{context}}'\ndoc_to_target: '{{target}}'\n"
        "metric_list:\n  - metric: acc\n")
    manager = TaskManager(include_path=str(folder), include_defaults=False)
    with pytest.raises(UserError, match="dataset could not be loaded") as exc:
        harness.load_tasks(("quantscope_absent",), manager)
    assert "\n" not in str(exc.value) and "offline" in str(exc.value)


def test_without_lm_eval_tasks_say_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install 'quantscope\[tasks\]'") as exc:
        harness.check_installed()
    assert "\n" not in str(exc.value)
    from quantscope.spec import WorkloadSpec
    from quantscope.sweep.specs import base_spec

    with pytest.raises(UserError, match="lm-evaluation-harness"):
        base_spec("synthetic:tiny-llama", {}, WorkloadSpec(), tasks=TaskSpec((cloze.TASK,)))


def test_a_near_miss_of_our_task_name_is_refused_before_any_run():
    pytest.importorskip("lm_eval")
    with pytest.raises(UserError, match="did you mean quantscope_cloze"):
        harness.check_tasks(("quantscope_clozee",))
    harness.check_tasks((cloze.TASK, "hellaswag"))  # a built-in name is lm-eval's to judge, in the worker
