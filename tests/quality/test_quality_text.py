"""Text sources: deterministic pydoc text with its hash, files, and a one-line error for datasets offline."""

import hashlib
import sys

import pytest

from quantscope.errors import UserError
from quantscope.quality.text import load_text

pytestmark = pytest.mark.unit


def test_pydoc_text_is_sorted_topics_with_their_hash():
    from pydoc_data.topics import topics

    t = load_text("pydoc")
    assert t.text.startswith(topics[min(topics)]) and t.text.endswith(topics[max(topics)])
    assert t.sha256 == hashlib.sha256(t.text.encode()).hexdigest() and t.chars > 100_000
    assert load_text("pydoc").sha256 == t.sha256


def test_file_text(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("héllo", encoding="utf-8")
    t = load_text(f"file:{path}")
    assert t.text == "héllo" and t.sha256 == hashlib.sha256("héllo".encode()).hexdigest()
    with pytest.raises(UserError, match="does not exist"):
        load_text(f"file:{tmp_path / 'missing.txt'}")
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="not UTF-8"):
        load_text(f"file:{bad}")


def test_dataset_without_the_datasets_package_is_one_actionable_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(UserError, match="pip install datasets") as err:
        load_text("dataset:wikitext-2")
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="unknown dataset"):
        load_text("dataset:c4")
    with pytest.raises(UserError, match="not one of"):
        load_text("wikitext")
