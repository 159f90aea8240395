"""What to advise on: the constraints from the command line and the comparable group of stored rows."""

from __future__ import annotations

from quantscope.errors import UserError


def constraints_from(max_memory: str | None, max_kld: float | None, min_top1: float | None):
    from quantscope.advise.recommend import Constraints
    from quantscope.present.units import parse_bytes

    if max_kld is not None and max_kld < 0:
        raise UserError(f"--max-kld must be >= 0 nat, got {max_kld}")
    if min_top1 is not None and not 0 <= min_top1 <= 1:
        raise UserError(f"--min-top1 is a fraction between 0 and 1 (e.g. 0.9), got {min_top1}")
    return Constraints(parse_bytes(max_memory) if max_memory else None, max_kld, min_top1)


def load_group(st, model: str | None = None, like: str | None = None):
    """The comparable group to advise on, one row per configuration: the rows comparable with run `like`
    (a run id or key prefix), else this machine's newest sweep context (any machine if this one has no
    rows). Returns (rows in run order, how many incomparable rows were left out)."""
    from quantscope.analysis.pick import pick
    from quantscope.analysis.selection import group
    from quantscope.env import fingerprint

    rows = st.results()
    if not rows:
        raise UserError(f"store {st.path} holds no runs: run `quantscope sweep` first")
    anchor = pick(st, like)[1] if like else None
    here = fingerprint().machine_id
    machine = anchor.env.machine_id if anchor else here if any(r.env.machine_id == here for _, r in rows) else None
    chosen, left_out = group(rows, machine_id=machine, model=model, anchor=anchor)
    if not chosen:
        raise UserError(f"no stored run matches model {model!r}: see `quantscope results`")
    return sorted(chosen, key=lambda x: x[0]), left_out  # run order: a sweep's reference first
