import os

import pytest
from helpers.models import one_line

from quantscope.errors import FormatError, UserError
from quantscope.models import parse_model

pytestmark = pytest.mark.unit


def test_none_and_bundled_name_the_bundled_model():
    assert parse_model(None).source == "bundled"
    assert parse_model("bundled") == parse_model(None)


def test_synthetic_name_and_typo_suggestion():
    assert parse_model("synthetic:llama-1b").ref == "llama-1b"
    with pytest.raises(UserError) as e:
        parse_model("synthetic:lama-1b")
    msg = one_line(e)
    assert "Did you mean 'llama-1b'?" in msg and "tiny-llama" in msg


def test_folder_is_hf_with_an_absolute_ref(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    monkeypatch.chdir(tmp_path)
    spec = parse_model("m")
    assert spec.source == "hf" and spec.ref == str(tmp_path / "m")


def test_gguf_decided_by_content_not_name(tmp_path):
    odd_name = tmp_path / "weights.safetensors"
    odd_name.write_bytes(b"GGUF" + bytes(20))
    assert parse_model(str(odd_name)).source == "gguf"
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(FormatError) as e:
        parse_model(str(fake))
    assert "is not a GGUF file" in one_line(e)


@pytest.mark.parametrize("arg", ["./nope", "~/definitely-not-here-qs", "/no/such/model", "model.gguf",
                                 "weights.bin", "a/b/c"])
def test_missing_paths_are_one_line_user_errors(arg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as e:
        parse_model(arg)
    assert one_line(e) == f"model path {arg} does not exist"


def test_slash_under_an_existing_folder_is_a_path(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        parse_model("models/smol")


def test_org_name_is_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = parse_model("HuggingFaceTB/SmolLM2-135M", revision="abc123")
    assert (spec.source, spec.ref, spec.revision) == ("hub", "HuggingFaceTB/SmolLM2-135M", "abc123")


def test_garbage_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as e:
        parse_model("not a model")
    assert "hub id" in one_line(e)


def test_trust_remote_code_needs_a_pinned_revision(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as e:
        parse_model("org/name", trust_remote_code=True)
    assert "--revision" in one_line(e)
    spec = parse_model("org/name", trust_remote_code=True, revision="0123abcd")
    assert spec.trust_remote_code and spec.revision == "0123abcd"


def test_options_are_carried(tmp_path):
    spec = parse_model(str(tmp_path), allow_pickle=True)
    assert spec.allow_pickle and spec.source == "hf" and os.path.isabs(spec.ref)
