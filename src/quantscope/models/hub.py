"""Source: a Hugging Face hub id ("org/name", pinned with --revision), fetched as Hugging Face tools do.

The local cache is looked at first; a model missing from it is downloaded through huggingface_hub
(its own progress bars, its cache layout, HF_ENDPOINT and HF_TOKEN) unless the machine is offline:
HF_HUB_OFFLINE=1 or `offline=True` (a command's --offline) keeps to the cache. Only what a run
reads is downloaded: the safetensors weights and index, the configs and the tokenizer files. A
repository whose weights are pickles only is refused before anything is downloaded, unless the user
allowed pickles (--allow-pickle). The snapshot folder is then checked exactly like a local folder
(hf.py), and the artifact's `revision` is the commit it resolved to (the snapshot's folder name),
so a run on "main" records which commit "main" was.

>>> resolve(ModelSpec("hub", "HuggingFaceTB/SmolLM2-135M"))        # doctest: +SKIP
ModelArtifact(format='hf', path='~/.cache/huggingface/hub/models--HuggingFaceTB--SmolLM2-135M/snapshots/…', …)
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from pathlib import Path

from quantscope.errors import FormatError, UnsafeArtifactError, UserError
from quantscope.models.base import ModelArtifact
from quantscope.models.hf import PICKLE_SUFFIXES, folder_artifact
from quantscope.spec import ModelSpec

# What a run reads from a repository (transformers' from_pretrained and the tokenizer), nothing else.
CONFIG_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "tokenizer.model", "chat_template.jinja", "vocab.json", "merges.txt")
SAFETENSORS = ("*.safetensors", "*.safetensors.index.json")
PICKLES = tuple(f"*{s}" for s in PICKLE_SUFFIXES) + ("pytorch_model.bin.index.json",)


OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")  # huggingface_hub's and datasets' (lm-eval's)


def go_offline() -> None:
    """A command's --offline: this process and the workers it starts keep to the local caches (hub models
    and lm-eval's datasets); a model or dataset missing from them is a one-line error, never a download."""
    for name in OFFLINE_VARIABLES:
        os.environ[name] = "1"


def _offline(offline: bool) -> bool:
    if offline:
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def allow_patterns(files: list[str], repo_id: str, allow_pickle: bool) -> list[str]:
    """The patterns to download from a repository holding `files`; refuses a pickle-only one.

    >>> allow_patterns(["config.json", "model.safetensors", "pytorch_model.bin"], "a/b", False)[-2:]
    ['*.safetensors', '*.safetensors.index.json']
    """
    def has(patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatch(f, p) for f in files for p in patterns)

    if has(SAFETENSORS):
        return [*CONFIG_FILES, *SAFETENSORS]
    if has(PICKLES):
        if not allow_pickle:
            raise UnsafeArtifactError(f"hub model {repo_id} has only pickle weights, which can run code when "
                                      "loaded: pick a repository with safetensors, or pass --allow-pickle")
        return [*CONFIG_FILES, *PICKLES]
    raise FormatError(f"hub model {repo_id} has no weight files (*.safetensors or pickle *.bin); "
                      f"it holds {', '.join(sorted(files)[:5]) or 'nothing'}")


def find_cached(repo_id: str, revision: str | None = None, cache_dir: str | Path | None = None) -> str | None:
    """Path of the cached snapshot of `repo_id` at `revision` holding a config and weights, or None.

    A download keeps only what a run reads (allow_patterns), and huggingface_hub checks a cached
    snapshot against the repository's whole file list (its tree cache), so the lookup asks for what a
    run reads too: the safetensors set, else the pickle set (downloaded only with --allow-pickle).
    """
    from huggingface_hub import errors as hub_errors
    from huggingface_hub import snapshot_download

    missing = tuple(getattr(hub_errors, name) for name in ("LocalEntryNotFoundError", "IncompleteSnapshotError")
                    if hasattr(hub_errors, name))
    for patterns in ([*CONFIG_FILES, *SAFETENSORS], [*CONFIG_FILES, *PICKLES]):
        try:
            found = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir, local_files_only=True,
                                      allow_patterns=patterns)
        except hub_errors.HFValidationError:
            raise UserError(f"model {repo_id!r} is not a valid hub id (org/name): pass org/name, a local folder "
                            "or a .gguf file") from None
        except (*missing, FileNotFoundError):
            continue
        if _complete(Path(found)):
            return found
    return None


def offline_error(repo_id: str, revision: str | None) -> UserError:
    at = f" at revision {revision}" if revision else ""
    return UserError(f"model {repo_id}{at} is not in the local Hugging Face cache and this machine is offline: "
                     "download it elsewhere and copy it into ~/.cache/huggingface/hub, or pass a local folder")


def cached_snapshot(repo_id: str, revision: str | None = None, cache_dir: str | Path | None = None) -> str:
    """Path of the cached snapshot of `repo_id` at `revision`; UserError when it is not cached."""
    found = find_cached(repo_id, revision, cache_dir)
    if found is None:
        raise offline_error(repo_id, revision)
    return found


def download(repo_id: str, revision: str | None, cache_dir: str | Path | None, allow_pickle: bool) -> str:
    """Download what a run reads of `repo_id` at `revision` into the hub cache; the snapshot path."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    at = f" at revision {revision}" if revision else ""
    try:
        info = HfApi().model_info(repo_id, revision=revision)
        files = [s.rfilename for s in info.siblings or []]
        patterns = allow_patterns(files, repo_id, allow_pickle)
        # The commit the revision resolved to: a branch that moves during the download cannot mix commits.
        path = snapshot_download(repo_id, revision=info.sha, cache_dir=cache_dir, allow_patterns=patterns)
        remember_ref(Path(path), revision or "main", info.sha)
        return path
    except RevisionNotFoundError:
        raise UserError(f"hub model {repo_id} has no revision {revision!r}: give a branch, tag or commit") from None
    except GatedRepoError:
        raise UserError(f"hub model {repo_id} is gated: accept its terms on huggingface.co and set HF_TOKEN "
                        "(or run `hf auth login`)") from None
    except RepositoryNotFoundError:
        raise UserError(f"hub model {repo_id} does not exist (or is private: set HF_TOKEN)") from None
    except (HfHubHTTPError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise UserError(f"could not download hub model {repo_id}{at} ({first}); check the network, or pass "
                        "--offline (HF_HUB_OFFLINE=1) to use the local cache only") from None


def remember_ref(snapshot_folder: Path, revision: str, commit: str) -> None:
    """Record that `revision` (a branch or tag) pointed at `commit`, as huggingface_hub does when it
    downloads by name (the cache's refs/<revision> file, https://huggingface.co/docs/huggingface_hub/
    guides/manage-cache). Downloading by commit writes no ref, and without it the next lookup of the
    name misses the cache: online it asks the Hub again, offline it finds nothing."""
    if revision == commit:
        return
    refs = snapshot_folder.parent.parent / "refs"
    ref = refs / revision  # a tag or branch may hold "/": huggingface_hub nests it the same way
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit)


def snapshot(spec: ModelSpec, cache_dir: str | Path | None = None, offline: bool = False) -> str:
    """The local snapshot folder of a hub model: the cache first, else a download when online."""
    found = find_cached(spec.ref, spec.revision, cache_dir)
    if found is not None:
        return found
    if _offline(offline):
        raise offline_error(spec.ref, spec.revision)
    return download(spec.ref, spec.revision, cache_dir, spec.allow_pickle)


def _complete(folder: Path) -> bool:
    """A cached snapshot a run can read: its config and some weights (a tokenizer-only fetch is not)."""
    return (folder / "config.json").is_file() and any(
        p.suffix == ".safetensors" or p.suffix in PICKLE_SUFFIXES for p in folder.iterdir())


def resolve(spec: ModelSpec, cache_dir: str | Path | None = None, offline: bool = False) -> ModelArtifact:
    path = snapshot(spec, cache_dir, offline)
    artifact = folder_artifact(path, spec)
    return dataclasses.replace(artifact, revision=Path(path).name)  # snapshots/<commit sha>
