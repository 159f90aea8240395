"""A hub model downloaded for real, without a network: huggingface_hub in a child process is pointed
(HF_ENDPOINT) at a small local endpoint that answers the three calls a download makes — model info,
the repository tree, and each file's resolve URL — with a tiny Llama's safetensors and configs.
Unlike tests/models/test_hub_source.py (which replaces huggingface_hub's calls), this exercises its
HTTP client, cache layout and snapshot folder as they run against the Hub."""

import hashlib
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import pytest

pytestmark = pytest.mark.unit

REPO = "acme/tiny-llama"
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def repo_files() -> dict[str, bytes]:
    """A 2-layer Llama with random weights (safetensors), its config, and files a download must skip."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from safetensors.torch import save

    config = transformers.LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    weights = save({k: v.contiguous() for k, v in model.state_dict().items()})
    return {"config.json": json.dumps({**config.to_dict(), "architectures": ["LlamaForCausalLM"]}).encode(),
            "model.safetensors": weights, "pytorch_model.bin": b"a pickle: never downloaded",
            "README.md": b"# tiny", "onnx/model.onnx": b"not read by a run"}


class Hub(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    log: list[str] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool = False) -> None:
        self.send_response(status)
        for k, v in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, data, head: bool) -> None:
        self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"}, head)

    def answer(self, head: bool) -> None:
        path = unquote(urlparse(self.path).path)
        self.log.append(f"{self.command} {path}")
        api = f"/api/models/{REPO}"
        if path.startswith(f"{api}/revision/") or path == api:
            return self._json({"id": REPO, "sha": COMMIT, "private": False,
                               "siblings": [{"rfilename": f} for f in self.files]}, head)
        if path.startswith(f"{api}/tree/{COMMIT}"):
            return self._json([{"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                               for f, b in self.files.items()], head)
        prefix = f"/{REPO}/resolve/{COMMIT}/"
        if path.startswith(prefix) and path[len(prefix):] in self.files:
            body = self.files[path[len(prefix):]]
            return self._send(200, body, {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha1(body).hexdigest()}"',
                                          "Content-Type": "application/octet-stream"}, head)
        self._send(404, b'{"error": "not found"}', {"X-Error-Code": "EntryNotFound"}, head)

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        self.answer(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self.answer(head=True)


@pytest.fixture
def endpoint():
    Hub.files, Hub.log = repo_files(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def resolve_in_child(endpoint: str, cache, *extra_env: tuple[str, str]) -> subprocess.CompletedProcess:
    code = ("from quantscope.models import resolve; from quantscope.models import parse_model; "
            f"a = resolve(parse_model({REPO!r})); print(a.path); print(a.revision); print(a.arch)")
    env = {"HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "PATH": "/usr/bin:/bin", **dict(extra_env)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_a_hub_model_downloads_from_an_endpoint_at_its_commit_and_then_comes_from_the_cache(endpoint, tmp_path):
    first = resolve_in_child(endpoint, tmp_path / "hub")
    assert first.returncode == 0, first.stderr[-2000:]
    path, revision, arch = first.stdout.split()[-3:]
    assert revision == COMMIT and arch == "LlamaForCausalLM" and path.endswith(f"snapshots/{COMMIT}")
    downloaded = sorted(f for line in Hub.log if "/resolve/" in line for f in [line.rsplit("/", 1)[1]])
    assert set(downloaded) == {"config.json", "model.safetensors"}  # no pickle, no README, no ONNX
    served = sorted(p.name for p in (tmp_path / "hub").rglob("snapshots/*/*"))
    assert served == ["config.json", "model.safetensors"]
    Hub.log.clear()
    again = resolve_in_child(endpoint, tmp_path / "hub")
    assert again.returncode == 0 and again.stdout.split()[-3:] == [path, revision, arch]
    assert Hub.log == []  # the cache answered: no call at all


def test_offline_never_calls_the_endpoint(endpoint, tmp_path):
    p = resolve_in_child(endpoint, tmp_path / "hub", ("HF_HUB_OFFLINE", "1"))
    assert p.returncode != 0 and "is not in the local Hugging Face cache and this machine is offline" in p.stderr
    assert Hub.log == []
