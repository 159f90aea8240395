"""The KLD reference of a run: find its stored log-prob file, or measure the reference first.

Used by `quantscope run` and by the sweep's driver alike, so both find (or make) the same file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from quantscope.errors import UserError
from quantscope.spec import RunSpec, reference_spec


def find_reference(st, spec: RunSpec, timeout: float, say: Callable[[str], None] = print) -> str | None:
    """The reference log-prob file for `spec`'s quality pass, running the reference first if needed.

    `spec.quality.reference` (a key prefix) names a stored run to use; otherwise the reference is
    the same model through torch FP32 on this machine. None when `spec` is itself the reference.
    """
    from quantscope.env import fingerprint
    from quantscope.runner import run_spec

    machine = fingerprint().machine_id
    if spec.quality.reference:
        rows = st.results(status="ok", key_prefix=spec.quality.reference)  # filtered by the store
        if not rows:
            raise UserError(f"no ok stored run has a key starting with {spec.quality.reference!r}: "
                            "see `quantscope results` for keys")
        return rows[0][1].info.get("reference_file")
    ref = reference_spec(spec)
    if ref == spec:
        return None  # this run is the reference: it writes the file
    found = st.latest_ok(ref.key_hash(), machine)
    ref_file = found[1].info.get("reference_file") if found else None
    if ref_file and Path(ref_file).is_file():
        return ref_file
    # A reference measured on another machine whose file is here (a Ray sweep's driver keeps a copy of
    # the file the reference wrote on its node): the same log-probs, no second reference run.
    for _, row in st.results(key_hash=ref.key_hash(), status="ok"):
        if row.info.get("reference_file") and Path(row.info["reference_file"]).is_file():
            return row.info["reference_file"]
    say(f"reference {ref.label} not measured yet on this machine: running it first")
    result = run_spec(ref, timeout)
    st.add(result)
    if result.status != "ok":
        raise UserError(f"the FP32 reference run failed ({result.status}: {result.reason}); "
                        "rerun with --no-quality to measure speed alone")
    return result.info.get("reference_file")
