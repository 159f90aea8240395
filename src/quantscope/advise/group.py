"""What to advise on: the constraints from the command line and the comparable group of stored rows."""

from __future__ import annotations

from dataclasses import dataclass

from quantscope.errors import UserError


def constraints_from(max_memory: str | None, max_kld: float | None, min_top1: float | None,
                     max_acc_drop: float | None = None):
    from quantscope.advise.recommend import Constraints
    from quantscope.present.units import parse_bytes

    if max_kld is not None and max_kld < 0:
        raise UserError(f"--max-kld must be >= 0 nat, got {max_kld}")
    if min_top1 is not None and not 0 <= min_top1 <= 1:
        raise UserError(f"--min-top1 is a fraction between 0 and 1 (e.g. 0.9), got {min_top1}")
    if max_acc_drop is not None and not 0 <= max_acc_drop <= 1:
        raise UserError(f"--max-acc-drop is a fraction of accuracy between 0 and 1 (0.01 = 1 point), "
                        f"got {max_acc_drop}")
    return Constraints(parse_bytes(max_memory) if max_memory else None, max_kld, min_top1, max_acc_drop)


@dataclass
class Selection:
    """The rows chosen to advise on (run order), the group they form, and every other group left out."""

    rows: list
    number: int  # 1-based, newest group first: what --group takes
    groups: list  # every group considered (analysis.selection.Group), newest first
    how: str  # why this group: "the newest sweep", "--like 3", "--group 2"

    @property
    def left_out(self) -> int:
        return sum(len(g) for k, g in enumerate(self.groups) if k + 1 != self.number)

    def lines(self) -> list[str]:
        """What was used, what was left out, how to pick another: printed by recommend, noted by report.

        e.g. `group 1 of 2 (the newest sweep): 4 configurations of ...; left out: 1 configuration in group 2
        (workload.prompt_tokens=128): pick it with --group 2 or --like 7`
        """
        from quantscope.analysis.selection import describe

        chosen = self.groups[self.number - 1]
        n = len(self.groups)
        head = (f"group {self.number} of {n} ({self.how}): {len(chosen)} configuration"
                f"{'s' if len(chosen) != 1 else ''} of {describe(chosen)}")
        if n == 1:
            return [head]
        lines = [head + f"; left out {self.left_out} configuration{'s' if self.left_out != 1 else ''} "
                 "in other groups (another model, workload, recipe or machine):"]
        for k, g in enumerate(self.groups):
            if k + 1 != self.number:
                lines.append(f"  group {k + 1}: {len(g)} configuration{'s' if len(g) != 1 else ''}, newest run "
                             f"{g.newest}: {describe(g, chosen)} (--group {k + 1} or --like {g.newest})")
        return lines


def load_group(st, model: str | None = None, like: str | None = None, group: int | None = None) -> Selection:
    """The comparable group to advise on, one row per configuration: the group of run `like` (a run id or
    key prefix), else group number `group` (1 = newest), else the newest sweep (analysis.selection.
    default_group), among this machine's rows (any machine's if this one has none)."""
    from quantscope.analysis.pick import pick
    from quantscope.analysis.selection import context, default_group, groups
    from quantscope.env import machine_id

    if like is not None and group is not None:
        raise UserError("--like and --group both pick a group: give one of them")
    rows = st.latest_per_key()  # what groups() keeps of every row, chosen by the store: the rest is never read
    if not rows:
        raise UserError(f"store {st.path} holds no runs: run `quantscope sweep` first")
    anchor = pick(st, like)[1] if like else None
    here = machine_id()
    machine = anchor.env.machine_id if anchor else here if any(r.env.machine_id == here for _, r in rows) else None
    gs = groups(rows, machine_id=machine, model=model)
    if not gs:
        raise UserError(f"no stored run matches model {model!r}: see `quantscope results`")
    if anchor is not None:
        want = context(anchor)
        k = next((k for k, g in enumerate(gs) if context(g.rows[0][1]) == want), None)
        if k is None:  # the anchor's model is not --model's
            raise UserError(f"run {like} is not a row of model {model!r}: drop --model or pick another run")
        how = f"--like {like}"
    elif group is not None:
        if not 1 <= group <= len(gs):
            raise UserError(f"--group {group} does not exist: the store has groups 1 to {len(gs)} "
                            "(1 = newest; see `quantscope recommend` for the list)")
        k, how = group - 1, f"--group {group}"
    else:
        k = default_group(gs)
        how = "the newest sweep" if len(gs[k]) >= 2 else "the newest run"
    chosen = sorted(gs[k].rows, key=lambda x: x[0])  # run order: a sweep's reference first
    return Selection(chosen, k + 1, gs, how)
