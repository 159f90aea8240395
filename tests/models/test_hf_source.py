import json
import struct

import numpy as np
import pytest
from helpers.models import one_line

from quantscope.errors import FormatError, UnsafeArtifactError
from quantscope.models import parse_model, resolve
from quantscope.models.safety import check_safetensors, looks_like_pickle

pytestmark = pytest.mark.unit

CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8}


def hf_folder(root, name="m"):
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(CONFIG))
    return folder


def save_safetensors(path, tensors=None):
    from safetensors.numpy import save_file

    save_file(tensors or {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}, str(path))
    return path


def test_safetensors_folder_resolves(tmp_path):
    folder = hf_folder(tmp_path)
    weights = save_safetensors(folder / "model.safetensors")
    a = resolve(parse_model(str(folder)))
    assert (a.format, a.path, a.arch) == ("hf", str(folder), "LlamaForCausalLM")
    assert a.file_bytes == weights.stat().st_size and len(a.digest) == 64 and not a.allow_pickle


def test_pickle_folder_is_refused_without_allow_pickle(tmp_path):
    torch = pytest.importorskip("torch")
    folder = hf_folder(tmp_path)
    torch.save({"w": torch.zeros(2, 2)}, folder / "pytorch_model.bin")
    with pytest.raises(UnsafeArtifactError) as e:
        resolve(parse_model(str(folder)))
    assert one_line(e) == (f"{folder} holds pickle weights, which can run code when loaded: convert them "
                           "to safetensors, or pass --allow-pickle to load them with "
                           "torch.load(weights_only=True)")
    a = resolve(parse_model(str(folder), allow_pickle=True))
    assert a.allow_pickle and a.file_bytes == (folder / "pytorch_model.bin").stat().st_size


def test_safetensors_win_over_pickles_and_disable_the_fallback(tmp_path):
    torch = pytest.importorskip("torch")
    folder = hf_folder(tmp_path)
    torch.save({"w": torch.zeros(2, 2)}, folder / "pytorch_model.bin")
    save_safetensors(folder / "model.safetensors")
    a = resolve(parse_model(str(folder), allow_pickle=True))
    assert not a.allow_pickle  # the backend will read the safetensors, never the pickle


def test_pickle_detected_by_content_not_name(tmp_path):
    import pickle

    legacy = tmp_path / "weights.pt"
    legacy.write_bytes(pickle.dumps({"w": [1, 2]}, protocol=2))
    assert looks_like_pickle(legacy)
    renamed_text = tmp_path / "pytorch_model.bin"
    renamed_text.write_bytes(b"just bytes, no pickle here")
    assert not looks_like_pickle(renamed_text)


def test_folder_without_weights_or_config(tmp_path):
    folder = hf_folder(tmp_path)
    (folder / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(FormatError) as e:
        resolve(parse_model(str(folder)))
    assert "no weight files" in one_line(e) and "model.gguf" in str(e.value)
    (folder / "config.json").unlink()
    with pytest.raises(FormatError) as e:
        resolve(parse_model(str(folder)))
    assert "has no config.json" in one_line(e)


def corrupt(path, how):
    raw = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    if how == "huge-length":
        raw[:8] = struct.pack("<Q", 2**62)
    elif how == "bad-json":
        raw[8:12] = b"}}}}"
    elif how == "truncated":
        raw = raw[: 8 + n + 4]
    elif how == "offset-outside":
        header = json.loads(raw[8:8 + n])
        header["w"]["data_offsets"] = [0, 10_000]
        blob = json.dumps(header).encode().ljust(n)
        raw[8:8 + n] = blob[:n] if len(blob) <= n else blob
        raw[:8] = struct.pack("<Q", len(blob))
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("how, words", [
    ("huge-length", "its header claims"),
    ("bad-json", "not valid JSON"),
    ("truncated", "is truncated: tensor 'w' ends at byte"),
    ("offset-outside", "tensor 'w' ends at byte"),
])
def test_corrupt_safetensors_header_is_a_one_line_format_error(tmp_path, how, words):
    folder = hf_folder(tmp_path)
    weights = save_safetensors(folder / "model.safetensors")
    corrupt(weights, how)
    with pytest.raises(FormatError) as e:
        resolve(parse_model(str(folder)))
    assert words in one_line(e)


def test_valid_safetensors_header_is_returned(tmp_path):
    weights = save_safetensors(tmp_path / "x.safetensors")
    assert check_safetensors(weights)["w"]["shape"] == [3, 4]


def test_sharded_index_with_a_missing_shard(tmp_path):
    folder = hf_folder(tmp_path)
    save_safetensors(folder / "model-00001-of-00002.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(FormatError) as e:
        resolve(parse_model(str(folder)))
    assert "missing shard" in one_line(e)
