"""What every store reads the same way, SQLite or PostgreSQL: filters, pages, rows decoded with their
statistics from `measurement_stats` and their raw samples read only when used (store/stats.py).

A subclass supplies `_read(fn)` (fn(execute) inside one read snapshot, execute(sql, params) -> rows,
SQL written with `?` markers), `_reopen()` (a fresh read-only handle on the same store, for samples
used after this one closed or from another thread) and `path`, the store's location as shown.

>>> with open_store() as st:  # doctest: +SKIP
...     for run_id, result in st.iter_results(backend="torch", since="2026-11-01"):
...         print(run_id, result.get("decode_tps").stats.mean)  # no sample read
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from quantscope.errors import StoreError, UserError
from quantscope.result import Measurement, Result
from quantscope.store.stats import STAT_COLUMNS, STATS_VERSION, Figures, StoredSamples, figures_of

# The run row as rows_of() makes it and store/copy.py moves it, in this order.
RUN_ROW = ("key_hash, machine_id, model, backend, status, reason, started_at, duration_s, label, spec_json, "
           "env_json, info_json, schema_version")
RUN_COLUMNS = "id, spec_json, env_json, status, reason, started_at, duration_s, info_json, schema_version"
# The only column names a filter may use; values always travel as parameters.
FILTERS = {"status": "status = ?", "key_hash": "key_hash = ?", "machine_id": "machine_id = ?", "model": "model = ?",
           "backend": "backend = ?", "since": "started_at >= ?"}
PAGE_ROWS = 200  # rows per read snapshot when streaming: the memory of a page, never of the store
_IN_CHUNK = 500  # run ids per `IN (...)`: under SQLite's default limit of 999 parameters
_MEASUREMENT_SQL = (
    "SELECT m.run_id, m.idx, m.name, m.unit, m.higher_is_better, m.meta_json, m.n, s.version, "
    + ", ".join(f"s.{c}" for c in STAT_COLUMNS)
    + " FROM measurements m LEFT JOIN measurement_stats s ON s.run_id = m.run_id AND s.idx = m.idx"
    " WHERE m.run_id IN ({marks}) ORDER BY m.run_id, m.idx"
)


def where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """A WHERE clause from FILTERS' fixed fragments and the given values (None = not filtered)."""
    unknown = set(filters) - set(FILTERS) - {"key_prefix"}
    if unknown:
        raise TypeError(f"unknown filter {sorted(unknown)}")
    clauses, params = [], []
    for name, sql in FILTERS.items():
        if filters.get(name) is not None:
            clauses.append(sql)
            params.append(filters[name])
    prefix = filters.get("key_prefix")
    if prefix is not None:
        clauses.append("substr(key_hash, 1, ?) = ?")
        params += [len(prefix), prefix.lower()]
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def rows_of(result: Result) -> tuple[tuple, list[tuple], list[tuple]]:
    """A Result as the rows both stores insert: (run row, measurement rows, stats rows)."""
    from quantscope.store.db import pack_samples

    try:
        d = result.to_dict()
        run_row = (
            result.spec.key_hash(), result.env.machine_id, result.spec.model.ref, result.spec.backend,
            result.status, result.reason, result.started_at, float(result.duration_s), result.spec.label,
            json.dumps(d["spec"], sort_keys=True), json.dumps(d["env"], sort_keys=True),
            json.dumps(d["info"], sort_keys=True), int(result.schema_version),
        )
        measurement_rows = [
            (i, m.name, m.unit, None if m.higher_is_better is None else int(m.higher_is_better),
             json.dumps(m.meta, sort_keys=True), len(m.samples), pack_samples(tuple(m.samples)))
            for i, m in enumerate(result.measurements)
        ]
        stats_rows = [(i, STATS_VERSION, *figures_of(m.samples).row()) for i, m in enumerate(result.measurements)]
    except (TypeError, ValueError) as e:
        raise StoreError(f"cannot store run {result.spec.label}: a field does not serialise to JSON ({e})") from e
    return run_row, measurement_rows, stats_rows


class ReadingStore:
    path: Any
    _closed = False

    def _read(self, fn: Callable[[Callable[..., list]], Any]) -> Any:  # pragma: no cover - per store
        raise NotImplementedError

    def _reopen(self) -> ReadingStore:  # pragma: no cover - per store
        raise NotImplementedError

    # -- reading ---------------------------------------------------------------------------------

    def get(self, run_id: int) -> Result:
        """The Result stored as `run_id`; UserError if there is none."""
        rows = self._select("WHERE id = ?", [int(run_id)])
        if not rows:
            raise UserError(f"no run {run_id} in store {self.path}: list runs with `quantscope results`")
        return rows[0][1]

    def results(self, *, limit: int | None = None, offset: int = 0, **filters: Any) -> list[tuple[int, Result]]:
        """Stored (run id, Result) pairs, newest first, filtered on whichever of status, key_hash,
        machine_id, model (ModelSpec.ref), backend, since (ISO start time or date), key_prefix is given;
        `offset` rows skipped, then at most `limit`. Samples are read when used (store/stats.py)."""
        clause, params = where(filters)
        tail = ""
        if limit is not None or offset:
            tail = " LIMIT ? OFFSET ?"
            params += [2**62 if limit is None else int(limit), int(offset)]  # PostgreSQL has no LIMIT -1
        return self._select(f"{clause} ORDER BY id DESC{tail}", params)

    def iter_results(self, **filters: Any) -> Iterator[tuple[int, Result]]:
        """The rows results() would list, a page at a time (each page one snapshot): a stream whose
        memory is a page's, whatever the store holds."""
        clause, params = where(filters)
        joiner = " AND " if clause else "WHERE "
        last = None
        while True:
            more = f"{clause}{joiner}id < ?" if last is not None else clause
            page = self._select(f"{more} ORDER BY id DESC LIMIT ?",
                                [*params, *([last] if last is not None else []), PAGE_ROWS])
            yield from page
            if len(page) < PAGE_ROWS:
                return
            last = page[-1][0]

    def count(self, **filters: Any) -> int:
        clause, params = where(filters)
        return int(self._read(lambda ex: ex(f"SELECT COUNT(*) FROM runs {clause}", params))[0][0])

    def latest_ok(self, key_hash: str, machine_id: str) -> tuple[int, Result] | None:
        """The newest ok run of this configuration on this machine, or None (a sweep resumes from it)."""
        rows = self._select("WHERE key_hash = ? AND machine_id = ? AND status = 'ok' ORDER BY id DESC LIMIT 1",
                            [key_hash, machine_id])
        return rows[0] if rows else None

    def latest_per_key(self) -> list[tuple[int, Result]]:
        """One row per (key, machine): the newest ok one, else the newest of any status; newest first.
        analysis.selection.latest_per_key of every row, chosen in SQL so the others are never read."""
        sql = ("SELECT COALESCE(MAX(CASE WHEN status = 'ok' THEN id END), MAX(id)) FROM runs"
               " GROUP BY key_hash, machine_id")
        ids = sorted((int(r[0]) for r in self._read(lambda ex: ex(sql, []))), reverse=True)
        out: list[tuple[int, Result]] = []
        for k in range(0, len(ids), _IN_CHUNK):
            chunk = ids[k:k + _IN_CHUNK]
            out += self._select(f"WHERE id IN ({', '.join('?' for _ in chunk)}) ORDER BY id DESC", chunk)
        return out

    def ids(self) -> list[int]:
        """Every run id, oldest first."""
        return [int(r[0]) for r in self._read(lambda ex: ex("SELECT id FROM runs ORDER BY id", []))]

    def identities(self) -> dict[tuple[str, str, str], int]:
        """{(key hash, machine, start time): run id}: what makes a run the same run in another store."""
        rows = self._read(lambda ex: ex("SELECT id, key_hash, machine_id, started_at FROM runs", []))
        return {(r[1], r[2], r[3]): int(r[0]) for r in rows}

    def raw_run(self, run_id: int) -> tuple[tuple, list[tuple], list[tuple]]:
        """One run's rows as stored (samples as their bytes), for store/copy.py: what add_rows takes."""

        def read(ex: Callable[..., list]) -> tuple[tuple, list[tuple], list[tuple]]:
            run = ex(f"SELECT {RUN_ROW} FROM runs WHERE id = ?", [run_id])
            ms = ex("SELECT idx, name, unit, higher_is_better, meta_json, n, samples FROM measurements"
                    " WHERE run_id = ? ORDER BY idx", [run_id])
            ss = ex(f"SELECT idx, version, {', '.join(STAT_COLUMNS)} FROM measurement_stats WHERE run_id = ?"
                    " ORDER BY idx", [run_id])
            return tuple(run[0]), [(*m[:6], bytes(m[6])) for m in ms], [tuple(x) for x in ss]

        return self._read(read)

    # -- decoding ----------------------------------------------------------------------------------

    def _select(self, tail: str, params: list[Any]) -> list[tuple[int, Result]]:
        """Runs matching `tail` (a fixed SQL fragment from this class) with their measurements' heads
        and statistics, read in one snapshot."""

        def read(ex: Callable[..., list]) -> list[tuple[int, Result]]:
            runs = ex(f"SELECT {RUN_COLUMNS} FROM runs {tail}", params)
            heads: dict[int, list] = {}
            ids = [int(r[0]) for r in runs]
            for k in range(0, len(ids), _IN_CHUNK):
                chunk = ids[k:k + _IN_CHUNK]
                for row in ex(_MEASUREMENT_SQL.format(marks=", ".join("?" for _ in chunk)), chunk):
                    heads.setdefault(int(row[0]), []).append(row[1:])
            return [(int(row[0]), self._decode(row, heads.get(int(row[0]), []))) for row in runs]

        return self._read(read)

    def _decode(self, row: tuple[Any, ...], heads: list) -> Result:
        run_id, spec_json, env_json, status, reason, started_at, duration_s, info_json, version = row
        measurements = []
        for idx, name, unit, hib, meta_json, n, stats_version, *stats in heads:
            figures = Figures.from_row(stats) if stats_version == STATS_VERSION else None
            samples = StoredSamples(int(n), figures, self._loader(int(run_id), int(idx), name, int(n)))
            measurements.append(Measurement(
                name=name, unit=unit, samples=samples,  # type: ignore[arg-type]
                higher_is_better=None if hib is None else bool(hib), meta=json.loads(meta_json),
            ))
        try:
            result = Result.from_dict({
                "spec": json.loads(spec_json), "env": json.loads(env_json), "status": status,
                "reason": reason, "started_at": started_at, "duration_s": float(duration_s),
                "info": json.loads(info_json), "schema_version": version,
            })
        except (KeyError, TypeError, ValueError, UserError) as e:  # UserError: a spec field it rejects
            raise StoreError(
                f"run {run_id} in {self.path} cannot be read by this quantscope ({type(e).__name__}: {e}): "
                "upgrade quantscope, or delete the run"
            ) from e
        return replace(result, measurements=tuple(measurements))

    def _loader(self, run_id: int, idx: int, name: str, n: int) -> Callable[[], tuple[float, ...]]:
        return lambda: self.samples(run_id, idx, name, n)

    def samples(self, run_id: int, idx: int, name: str, n: int) -> tuple[float, ...]:
        """One measurement's raw samples, checked against its count."""
        from quantscope.store.db import unpack_samples

        if self._closed:  # a row read earlier, its samples used after the store closed
            again = self._reopen()
            try:
                return again.samples(run_id, idx, name, n)
            finally:
                again.close()
        found = self._blob(run_id, idx)
        if found is None:
            raise StoreError(f"run {run_id} in {self.path} was deleted while it was being read: read it again")
        blob = bytes(found)
        if len(blob) != 8 * n:
            raise StoreError(
                f"run {run_id} in {self.path}: measurement {name!r} holds {len(blob)} bytes for {n} "
                "samples (corrupt): delete the run or restore the file from a backup"
            )
        return unpack_samples(blob)

    def _blob(self, run_id: int, idx: int) -> bytes | None:
        rows = self._read(lambda ex: ex("SELECT samples FROM measurements WHERE run_id = ? AND idx = ?",
                                        [run_id, idx]))
        return rows[0][0] if rows else None

    def close(self) -> None:  # pragma: no cover - per store
        raise NotImplementedError
