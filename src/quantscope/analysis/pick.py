"""Find stored runs by run id or key-hash prefix (the two handles `quantscope results` shows)."""

from __future__ import annotations

from quantscope.errors import UserError
from quantscope.result import Result

MIN_PREFIX = 4  # shorter hex strings match too many keys to mean anything


def pick(st, handle: str) -> tuple[int, Result]:
    """The run named by `handle`: a run id (digits, if such a run exists), else a key-hash prefix,
    whose newest ok run is taken. One-line UserError when nothing, or more than one key, matches.
    """
    handle = handle.strip()
    if handle.isdigit():
        try:
            return int(handle), st.get(int(handle))  # one row read, never the whole store
        except UserError:
            pass  # not a run id here: perhaps a key prefix of digits
    prefix = handle.lower()
    if len(prefix) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in prefix):
        raise UserError(f"{handle!r} is neither a run id in the store nor a key-hash prefix of at least "
                        f"{MIN_PREFIX} hex digits: see `quantscope results` for both")
    matches = st.results(key_prefix=prefix)  # the store filters: only this key's rows are read
    keys = sorted({r.spec.key_hash() for _, r in matches})
    if not matches:
        raise UserError(f"no stored run has id {handle} or a key starting with {prefix!r}: "
                        "see `quantscope results`")
    if len(keys) > 1:
        raise UserError(f"key prefix {prefix!r} matches {len(keys)} configurations ({', '.join(keys[:4])}"
                        f"{', ...' if len(keys) > 4 else ''}): give more digits")
    ok = [(i, r) for i, r in matches if r.status == "ok"]
    return (ok or matches)[0]
