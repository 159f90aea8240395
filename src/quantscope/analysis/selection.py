"""Which stored rows belong together: key fields, their differences, and one comparable group.

Two runs compare when every key property (RunSpec.key()) matches except the ones a sweep varies on
purpose (backend, quantization, backend options), and they were measured on the same machine:
compare-llama-bench's KEY_PROPERTIES and pyperf's "incompatible benchmark" refusal.

>>> flat({"a": {"b": 1, "c": [2]}, "d": 3})
{'a.b': 1, 'a.c': [2], 'd': 3}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantscope.result import Result

# The key fields a comparison is about; every other key field must match.
COMPARED = ("backend", "quant", "options")

Rows = list[tuple[int, Result]]


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat(v, name + "."))
        else:
            out[name] = v
    return out


def compared(name: str) -> bool:
    return any(name == c or name.startswith(c + ".") for c in COMPARED)


def _fields(r: Result) -> dict[str, Any]:
    """The key fields that must match, flattened. Without a quality pass its recipe fields say
    nothing about the row (the quick workload scores 1024 tokens, the full pass 16384): they are left out."""
    fields = {k: v for k, v in flat(r.spec.key()).items() if not compared(k)}
    if not r.spec.quality.enabled:
        fields = {k: v for k, v in fields.items() if k == "quality.enabled" or not k.startswith("quality.")}
    return fields


def context(r: Result) -> tuple[tuple[str, str], ...]:
    """The key fields that must match for two rows to compare, plus the machine, as a hashable tuple."""
    fields = {k: repr(v) for k, v in _fields(r).items()}
    fields["machine_id"] = r.env.machine_id
    return tuple(sorted(fields.items()))


def differences(a: Result, b: Result) -> list[tuple[str, Any, Any]]:
    """(field, value in a, value in b) for each non-compared key field (and the machine) that differs."""
    fa, fb = _fields(a), _fields(b)
    out = [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    if a.env.machine_id != b.env.machine_id:
        out.append(("machine_id", a.env.machine_id, b.env.machine_id))
    return out


def varied(results: list[Result]) -> list[str]:
    """The compared key fields whose values differ among `results` (the columns worth showing)."""
    flats = [flat(r.spec.key()) for r in results]
    names = sorted({k for f in flats for k in f if compared(k)})
    return [k for k in names if len({repr(f.get(k)) for f in flats}) > 1]


def latest_per_key(rows: Rows) -> Rows:
    """One row per (key, machine): the newest ok one, else the newest of any status. Newest first."""
    best: dict[tuple[str, str], tuple[int, Result]] = {}
    for run_id, r in rows:
        k = (r.spec.key_hash(), r.env.machine_id)
        have = best.get(k)
        if have is None or (r.status == "ok", run_id) > (have[1].status == "ok", have[0]):
            best[k] = (run_id, r)
    return sorted(best.values(), key=lambda x: -x[0])


def group(rows: Rows, machine_id: str | None = None, model: str | None = None,
          anchor: Result | None = None) -> tuple[Rows, int]:
    """The comparable group of `anchor` (default: the newest row after the machine/model filters),
    one row per key.

    Returns (rows of that group newest first, how many other rows were left out as incomparable).
    """
    pool = [(i, r) for i, r in rows
            if (machine_id is None or r.env.machine_id == machine_id)
            and (model is None or model in (r.spec.model.ref, r.spec.model.label))]
    latest = latest_per_key(pool)
    if not latest:
        return [], len(rows)
    want = context(anchor if anchor is not None else max(latest, key=lambda x: x[0])[1])
    chosen = [(i, r) for i, r in latest if context(r) == want]
    return chosen, len(latest) - len(chosen)


@dataclass(frozen=True)
class Group:
    """One comparable group: one row per configuration, newest first."""

    rows: Rows

    @property
    def newest(self) -> int:
        return self.rows[0][0]

    @property
    def model(self) -> str:
        return self.rows[0][1].spec.model.label

    def __len__(self) -> int:
        return len(self.rows)


def groups(rows: Rows, machine_id: str | None = None, model: str | None = None) -> list[Group]:
    """Every comparable group of `rows` (after the machine/model filters), the newest group first."""
    pool = [(i, r) for i, r in rows
            if (machine_id is None or r.env.machine_id == machine_id)
            and (model is None or model in (r.spec.model.ref, r.spec.model.label))]
    buckets: dict[tuple, Rows] = {}
    for i, r in latest_per_key(pool):  # newest first, so each bucket is too
        buckets.setdefault(context(r), []).append((i, r))
    return sorted((Group(b) for b in buckets.values()), key=lambda g: -g.newest)


def default_group(gs: list[Group]) -> int:
    """Which group to advise on when not told: the newest sweep (a group of two or more configurations),
    so a later lone run with another workload never hides it; with no sweep, the group of the newest
    model with the most configurations (the newest among equals).

    >>> one, two = Group([(9, None)]), Group([(5, None), (4, None)])
    >>> default_group([one, two])
    1
    """
    sweeps = [k for k, g in enumerate(gs) if len(g) >= 2]
    if sweeps:
        return sweeps[0]
    newest_model = gs[0].model
    same = [k for k, g in enumerate(gs) if g.model == newest_model]
    return max(same, key=lambda k: (len(gs[k]), -k))


def describe(g: Group, against: Group | None = None, fields: int = 3) -> str:
    """A group in a few words: its model and workload, or (given `against`) the fields that set it apart.

    e.g. `synthetic:tiny-llama, P=8 G=4 B=1, no quality pass` or `workload.prompt_tokens=128, ...`.
    """
    r = g.rows[0][1]
    if against is not None:
        diff = differences(against.rows[0][1], r)
        text = ", ".join(f"{k}={b}" for k, _, b in diff[:fields])
        return text + (f" (+{len(diff) - fields} more)" if len(diff) > fields else "")
    w = r.spec.workload
    quality = f"{r.spec.quality.recipe} quality pass" if r.spec.quality.enabled else "no quality pass"
    return f"{g.model}, P={w.prompt_tokens} G={w.gen_tokens} B={w.batch}, {quality}"
