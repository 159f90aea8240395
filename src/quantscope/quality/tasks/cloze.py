"""quantscope_cloze: our offline LAMBADA-style task, written as an lm-eval task YAML over a local JSONL.

LAMBADA (Paperno et al. 2016) asks for the last word of a passage whose word can be found from the
wider context; lm-eval scores it as `loglikelihood` of " word" after the passage, and `acc` is 1 when
that word is the model's greedy continuation. We build passages the same way from text every Python
install carries: the docstrings of the standard library's top-level pure-Python modules, parsed with
`ast` (never imported). A passage is a docstring paragraph of prose (no code, no doctest) up to a
sentence that ends in a word of 3+ letters which already occurs earlier in the passage (LAMBADA's
"can be inferred from context"), with at least MIN_CONTEXT_WORDS words before it.

Kept apart from the other texts quantscope feeds a model: the perplexity text (pydoc_data/topics.py, the
language reference) is never read here, and the calibration modules (methods/calibration.py:
argparse, difflib, ...) are left out, so a calibrated method never saw a passage it is then tested on.
tests/quality/test_tasks_cloze.py checks both.

The documents are shuffled with a fixed seed (so `--task-limit N`, lm-eval's "first N documents",
spans many modules) and written into the cache as `<cache>/tasks/quantscope_cloze-<sha16>/`: the
JSONL, and the YAML whose `dataset_kwargs.data_files` names it. Their content differs between Python
versions, so the JSONL's sha256 goes into the folder name, the YAML's metadata and every result.

>>> docs = cloze_documents()
>>> len(docs) > 200, sorted(docs[0])
(True, ['context', 'module', 'target'])
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from quantscope import paths
from quantscope.errors import UserError
from quantscope.methods.calibration import module_docstrings  # the same reader the calibration text uses

TASK = "quantscope_cloze"
# Bump when the rule that builds documents changes (lm-eval stores it as the task's version).
VERSION = 1
MIN_CONTEXT_WORDS = 15
SHUFFLE_SEED = 18  # issue 18
# Left out: the calibration source's modules (methods/calibration.py DOCSTRING_MODULES, repeated here
# because quality/ may not import methods/; the test compares the two), and modules whose text is not
# prose about Python (`this` is ROT13, `antigravity` a joke).
EXCLUDED_MODULES = frozenset({"argparse", "difflib", "textwrap", "statistics", "fractions", "calendar", "heapq",
                              "shlex", "this", "antigravity"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_LAST_WORD = re.compile(r"\s([A-Za-z]{3,})\.$")


@dataclass(frozen=True)
class TaskFiles:
    """Where lm-eval finds the task (`include_path`) and what identifies its data."""

    name: str
    include_path: Path  # a folder holding the YAML (and the JSONL it names)
    jsonl: Path
    sha256: str  # of the JSONL bytes
    documents: int
    version: int


def source_modules() -> list[tuple[str, str]]:
    """(name, source file) of every top-level pure-Python stdlib module taken, sorted by name.

    sys.stdlib_module_names lists what this Python ships; find_spec on a top-level name runs none of
    its code. A module missing here (Debian splits tkinter, idlelib out) is skipped: the hash says so.
    """
    out = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in EXCLUDED_MODULES:
            continue
        found = importlib.util.find_spec(name)
        if found is not None and (found.origin or "").endswith(".py"):
            out.append((name, found.origin))
    return out




def passages(docstring: str) -> list[tuple[str, str]]:
    """(context, " word") pairs of one docstring, by the rule in the module docstring.

    >>> text = ("A lock is held by one thread at a time. When another thread asks for the lock it waits "
    ...         "until the first thread releases the lock.")
    >>> [(context[-30:], word) for context, word in passages(text)]
    [(' the first thread releases the', ' lock')]
    """
    out = []
    for para in re.split(r"\n\s*\n", docstring):
        lines = para.splitlines()
        if any(line.startswith(("    ", "\t", ">>>", "...")) for line in lines):
            continue  # code, a doctest or an indented table: not prose
        sentences = _SENTENCE_END.split(" ".join(line.strip() for line in lines))
        for i, sentence in enumerate(sentences):
            found = _LAST_WORD.search(sentence)
            if not found:
                continue
            word = found.group(1)
            context = " ".join(sentences[:i] + [sentence[:found.start()]])
            if len(context.split()) < MIN_CONTEXT_WORDS:
                continue
            if re.search(rf"\b{word}\b", context, re.IGNORECASE):
                out.append((context, " " + word))
    return out


@functools.lru_cache(maxsize=1)
def cloze_documents() -> tuple[dict[str, str], ...]:
    """Every document, deduplicated and shuffled with SHUFFLE_SEED: {"context", "target", "module"}."""
    seen, docs = set(), []
    for name, path in source_modules():
        for doc in module_docstrings(path):
            for context, target in passages(doc):
                if (context, target) not in seen:
                    seen.add((context, target))
                    docs.append({"context": context, "target": target, "module": name})
    random.Random(SHUFFLE_SEED).shuffle(docs)
    return tuple(docs)


def jsonl_bytes(docs: tuple[dict[str, str], ...]) -> bytes:
    return "".join(json.dumps(d, sort_keys=True, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")


def task_yaml(jsonl: Path, sha256: str) -> str:
    """The lm-eval task config: LAMBADA's (lambada_openai.yaml) over our local JSONL, acc only.

    Written as JSON, which is valid YAML: no quoting rules to get wrong for a path.
    """
    config = {
        "task": TASK,
        "dataset_path": "json",  # datasets' packaged JSON builder: a local file, no download
        "dataset_kwargs": {"data_files": {"test": str(jsonl)}},
        "output_type": "loglikelihood",
        "test_split": "test",
        "doc_to_text": "{{context}}",
        "doc_to_target": "{{target}}",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": VERSION, "dataset_sha256": sha256},
    }
    return json.dumps(config, indent=2) + "\n"


def write_task(root: Path | None = None) -> TaskFiles:
    """Write (once; the folder is keyed by content) the task's JSONL and YAML; return where they are.

    >>> files = write_task()                       # doctest: +SKIP
    >>> files.include_path.name                    # doctest: +SKIP
    'quantscope_cloze-3f1c0a9b2d7e6a41'
    """
    docs = cloze_documents()
    if not docs:
        raise UserError(f"{TASK}: no passage found in this Python's standard-library docstrings; "
                        "use another --tasks name")
    data = jsonl_bytes(docs)
    sha = hashlib.sha256(data).hexdigest()
    folder = (root or paths.cache_root("tasks")) / f"{TASK}-{sha[:16]}"
    jsonl = folder / "cloze.jsonl"
    if not (folder / f"{TASK}.yaml").is_file():
        try:
            with paths.atomic_dir(folder) as tmp:
                (tmp / "cloze.jsonl").write_bytes(data)
                # the YAML names the JSONL at its final place, not the temporary folder's
                (tmp / f"{TASK}.yaml").write_text(task_yaml(jsonl, sha), encoding="utf-8")
        except OSError:
            if not (folder / f"{TASK}.yaml").is_file():  # not another worker that wrote the same folder first
                raise
    elif hashlib.sha256(jsonl.read_bytes()).hexdigest() != sha:
        raise UserError(f"{TASK}: {jsonl} does not match its hash; delete {folder} and rerun")
    return TaskFiles(TASK, folder, jsonl, sha, len(docs), VERSION)
