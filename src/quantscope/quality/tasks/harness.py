"""lm-evaluation-harness around the model already loaded in the worker: task accuracy by lm-eval itself.

The model that was just timed is handed to lm-eval's own HF wrapper (`HFLM(pretrained=<loaded model>,
tokenizer=...)`) and evaluated by `lm_eval.simple_evaluate`, so a number here is the number
`lm_eval --model hf ... --tasks T --limit N --batch_size 1` prints for the same weights (the test
compares them). Only a loaded transformers model can be driven this way: the other runtimes (ONNX
Runtime, llama.cpp) say so as the task part's reason; their speed row stands.

Fixed choices, each part of what a number means: batch size 1 (padding in a larger batch changes the
logits by rounding), lm-eval's defaults otherwise (its seeds, its few-shot count per task).

>>> require_lm_eval()  # doctest: +SKIP
'0.4.13'
"""

from __future__ import annotations

import difflib
import importlib.util
from collections.abc import Callable
from typing import Any

from quantscope.errors import UserError
from quantscope.quality.tasks import cloze

REQUIREMENT = "lm-eval>=0.4.13,<0.5"
INSTALL = f"pip install 'quantscope[tasks]' (or pip install '{REQUIREMENT}')"
BATCH_SIZE = 1
# Our own tasks: name -> the function that writes their YAML and data into the cache (no download).
OWN_TASKS: dict[str, Callable[[], cloze.TaskFiles]] = {cloze.TASK: cloze.write_task}


def check_installed() -> None:
    """A one-line UserError when lm-eval is missing; imports nothing (the parent calls it before a run)."""
    if importlib.util.find_spec("lm_eval") is None:
        raise UserError(f"--tasks needs lm-evaluation-harness, which is not installed: {INSTALL}")


def check_tasks(names: tuple[str, ...]) -> None:
    """Before any run, in the parent: lm-eval installed, and no near miss of our own task's name (a typo
    would otherwise cost the whole timed run, then lm-eval's index of every built-in task, to find)."""
    check_installed()
    for name in names:
        near = difflib.get_close_matches(name, list(OWN_TASKS), n=1, cutoff=0.8)
        if name not in OWN_TASKS and near:
            raise UserError(f"task {name!r} is not known: did you mean {near[0]}?")


def require_lm_eval() -> str:
    """lm-eval's version, or the one-line UserError saying what to install."""
    check_installed()
    from importlib.metadata import version

    return version("lm_eval")


def drive_reason(backend: Any) -> str | None:
    """None when lm-eval can evaluate `backend`'s loaded model in place, else why not (one line).

    It needs a transformers model (any torch-family backend: torch, torchao, bitsandbytes) and its
    tokenizer. Found by the classes the object has, without importing torch here.
    """
    model, tokenizer = getattr(backend, "model", None), getattr(backend, "tokenizer", None)
    if not any(c.__name__ == "PreTrainedModel" for c in type(model).__mro__):
        held = type(model).__name__ if model is not None else "no PyTorch model"
        return (f"lm-eval evaluates a loaded transformers model in place; the {backend.name} runtime holds "
                f"{held} (task accuracy is measured on the torch, torchao and bnb backends)")
    if tokenizer is None:
        return "the model has no tokenizer (synthetic weights): lm-eval needs text"
    return None


def task_manager(names: tuple[str, ...]) -> tuple[Any, dict[str, cloze.TaskFiles]]:
    """lm-eval's TaskManager that knows `names`, and the files of our own tasks among them.

    lm-eval's ~15k built-in task configs are indexed only when a name is not ours (a minute on 2 cores).
    """
    from lm_eval.tasks import TaskManager

    own = {n: OWN_TASKS[n]() for n in names if n in OWN_TASKS}
    builtin = [n for n in names if n not in own]
    manager = TaskManager(include_path=[str(f.include_path) for f in own.values()] or None,
                          include_defaults=bool(builtin))
    known = set(manager.all_tasks)
    for name in builtin:
        if name not in known:
            near = difflib.get_close_matches(name, sorted(known | set(OWN_TASKS)), n=3)
            hint = f"did you mean {', '.join(near)}?" if near else f"our offline task is {cloze.TASK}"
            raise UserError(f"lm-eval {require_lm_eval()} has no task {name!r}: {hint}")
    return manager, own


def load_tasks(names: tuple[str, ...], manager: Any) -> None:
    """Build the tasks (this loads their datasets), so a dataset that cannot be had is one line.

    Offline, a hub dataset that is not in the local datasets cache fails here, before any evaluation.
    """
    try:
        manager.load(list(names))
    except Exception as exc:  # noqa: BLE001 - datasets/hub raise many types; each is "cannot load the data"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"task {', '.join(names)}: its dataset could not be loaded ({type(exc).__name__}: "
                        f"{first[:200]}); offline, only datasets already in the local cache work, and "
                        f"{cloze.TASK} needs none") from None


def wrap(model: Any, tokenizer: Any) -> Any:
    """lm-eval's HFLM around the loaded model, leaving the model exactly as it was timed.

    HFLM calls `model.tie_weights()`, which re-ties lm_head to the token embedding: for a model whose
    lm_head was quantized on its own (torchao lm_head=true, a policy override) that would swap the
    quantized head back to the float embedding. The call is made a no-op while HFLM is built.
    """
    from lm_eval.models.huggingface import HFLM

    model.tie_weights = lambda *args, **kwargs: None  # an instance attribute, deleted below
    try:
        return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=BATCH_SIZE)
    finally:
        del model.tie_weights


def evaluate(model: Any, tokenizer: Any, names: tuple[str, ...], limit: int | None) -> tuple[dict, dict]:
    """lm-eval's full output for `names` on the loaded model, and our own tasks' files.

    The output is simple_evaluate's dict: results, versions, n-samples, n-shot, samples (per document).
    """
    require_lm_eval()
    import lm_eval

    manager, own = task_manager(names)
    load_tasks(names, manager)
    out = lm_eval.simple_evaluate(model=wrap(model, tokenizer), tasks=list(names), limit=limit,
                                  task_manager=manager, log_samples=True, batch_size=BATCH_SIZE)
    if out is None:  # lm-eval returns None on non-zero ranks only; one process here
        raise RuntimeError("lm-eval returned no results")
    return out, own
