"""quantscope_cloze: deterministic documents, kept apart from the perplexity and calibration texts, written
as an lm-eval task that lm-eval itself loads offline; the task spec leaves old key hashes alone."""

from __future__ import annotations

import hashlib
import json

import pytest

from quantscope.errors import UserError
from quantscope.quality.tasks import cloze
from quantscope.spec import ModelSpec, RunSpec, TaskSpec, reference_spec

pytestmark = pytest.mark.unit


def test_documents_are_the_same_on_every_call_and_every_target_occurs_in_its_context():
    docs = cloze.cloze_documents()
    cloze.cloze_documents.cache_clear()
    again = cloze.cloze_documents()
    assert docs == again and len(docs) >= 200
    for d in docs:
        word = d["target"].strip()
        assert d["target"] == " " + word and word.isalpha() and len(word) >= 3
        assert word.lower() in d["context"].lower()
        assert len(d["context"].split()) >= cloze.MIN_CONTEXT_WORDS


def test_no_passage_comes_from_the_perplexity_text_or_the_calibration_modules():
    from quantscope.methods.calibration import DOCSTRING_MODULES
    from quantscope.quality.text import pydoc_text

    assert set(DOCSTRING_MODULES) <= cloze.EXCLUDED_MODULES
    modules = {d["module"] for d in cloze.cloze_documents()}
    assert not modules & set(DOCSTRING_MODULES) and "pydoc_data" not in modules
    topics = pydoc_text()
    # a whole passage (context + word) never appears in the scored text
    assert not [d for d in cloze.cloze_documents() if (d["context"] + d["target"]) in topics]


def test_write_task_writes_the_yaml_and_jsonl_once_with_the_data_hash(tmp_path):
    files = cloze.write_task(tmp_path)
    data = files.jsonl.read_bytes()
    assert hashlib.sha256(data).hexdigest() == files.sha256
    assert files.include_path.name == f"quantscope_cloze-{files.sha256[:16]}"
    config = json.loads((files.include_path / "quantscope_cloze.yaml").read_text())
    assert config["dataset_kwargs"]["data_files"]["test"] == str(files.jsonl)
    assert config["metadata"] == {"version": cloze.VERSION, "dataset_sha256": files.sha256}
    assert len(data.splitlines()) == files.documents
    mtime = files.jsonl.stat().st_mtime_ns
    assert cloze.write_task(tmp_path) == files and files.jsonl.stat().st_mtime_ns == mtime  # reused


def test_a_tampered_cached_jsonl_is_refused_in_one_line(tmp_path):
    files = cloze.write_task(tmp_path)
    files.jsonl.chmod(0o644)
    files.jsonl.write_text('{"context": "x", "target": " y"}\n')
    with pytest.raises(UserError, match="does not match its hash") as exc:
        cloze.write_task(tmp_path)
    assert "\n" not in str(exc.value)


def test_lm_eval_loads_our_task_offline_from_the_cache(tmp_path, monkeypatch):
    pytest.importorskip("lm_eval")
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    files = cloze.write_task(tmp_path)
    manager = TaskManager(include_path=str(files.include_path), include_defaults=False)
    task = manager.load([cloze.TASK])["tasks"][cloze.TASK]
    docs = list(task.test_docs())
    assert len(docs) == files.documents and task.VERSION == cloze.VERSION
    first = cloze.cloze_documents()[0]
    assert task.doc_to_text(docs[0]) == first["context"] and task.doc_to_target(docs[0]) == first["target"]


def test_a_spec_without_tasks_keeps_its_stored_form_and_key_hash():
    spec = RunSpec(model=ModelSpec("synthetic", "tiny-llama"))
    assert "tasks" not in spec.to_dict()
    with_tasks = RunSpec(model=spec.model, tasks=TaskSpec.parse("quantscope_cloze", 200))
    assert with_tasks.key_hash() != spec.key_hash()
    assert RunSpec.from_dict(with_tasks.to_dict()) == with_tasks
    assert RunSpec.from_dict(spec.to_dict()) == spec
    # the reference of a row with tasks is evaluated on the same tasks (its drop is paired per document)
    assert reference_spec(with_tasks).tasks == with_tasks.tasks


@pytest.mark.parametrize("text, limit, message", [
    ("quantscope_cloze,quantscope_cloze", None, None),  # a repeat is dropped by parse
    (None, 200, "a task limit needs --tasks"),
    ("quantscope_cloze", 0, "task limit must be >= 1"),
])
def test_task_spec_parsing_refuses_bad_input_in_one_line(text, limit, message):
    if message is None:
        assert TaskSpec.parse(text, limit).names == ("quantscope_cloze",)
        return
    with pytest.raises(UserError, match=message):
        TaskSpec.parse(text, limit)
