"""Machine identity scheme 2 in the store (issue 16): the migration recomputes every stored row's id
from its stored fingerprint, and rows of machines that differ only in CPU flags are never reused or
compared across.
"""

import dataclasses
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from helpers.results import make_env, make_result, make_spec

from quantscope.analysis.selection import differences, group
from quantscope.env import machine_identity
from quantscope.store import STORE_SCHEMA, Store
from quantscope.sweep.execute import plan

pytestmark = pytest.mark.unit

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "store-d6b39fc.sqlite"


def old_store_with_an_avx512_row(tmp_path) -> Path:
    """The d6b39fc fixture (schema 1: rows 1-5 "test-machine", row 6 a real scheme-1 id), row 1
    rewritten as if measured on an AVX-512 machine that scheme 1 could not tell apart (same model name,
    cores, RAM: same old id)."""
    path = tmp_path / "old.sqlite"
    shutil.copy(OLD, path)
    conn = sqlite3.connect(path)
    env = json.loads(conn.execute("SELECT env_json FROM runs WHERE id = 1").fetchone()[0])
    env["cpu_flags"] = sorted(env["cpu_flags"] + ["avx512_vnni", "avx512f"])
    conn.execute("UPDATE runs SET env_json = ? WHERE id = 1", (json.dumps(env, sort_keys=True),))
    conn.commit()
    assert conn.execute("SELECT machine_id FROM runs WHERE id IN (1, 2)").fetchall() == [("test-machine",)] * 2
    conn.close()
    return path


def test_the_migration_recomputes_every_id_from_the_stored_fingerprint(tmp_path):
    path = old_store_with_an_avx512_row(tmp_path)
    with Store(path) as st:  # a writing command migrates the file
        rows = dict(st.results())
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == STORE_SCHEMA
    for run_id, column, env_json in conn.execute("SELECT id, machine_id, env_json FROM runs"):
        env = json.loads(env_json)
        assert column == env["machine_id"] == machine_identity(env) == rows[run_id].env.machine_id
    conn.close()
    assert len({rows[i].env.machine_id for i in (2, 3, 4, 5)}) == 1  # same stored hardware, same id
    assert rows[1].env.machine_id != rows[2].env.machine_id  # the AVX-512 row is told apart
    assert rows[6].env.machine_id not in ("7056ba228b77", rows[2].env.machine_id)


def test_reading_an_old_store_readonly_shows_the_new_ids_and_leaves_the_file_alone(tmp_path):
    path = old_store_with_an_avx512_row(tmp_path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with Store(path, readonly=True) as st:
        rows = dict(st.results())
    assert all(r.env.machine_id == machine_identity(dataclasses.asdict(r.env)) for r in rows.values())
    assert rows[1].env.machine_id != rows[2].env.machine_id
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_an_old_row_is_not_this_machine_and_an_old_avx512_row_is_not_reused_for_its_avx2_twin(tmp_path):
    path = old_store_with_an_avx512_row(tmp_path)
    with Store(path) as st:
        rows = dict(st.results())
        avx2_env = rows[2].env
        step = plan(st, [rows[1].spec], avx2_env)[0]
        assert step.reuse is None  # row 1's key exists, but only from the AVX-512 machine
        assert plan(st, [rows[2].spec], avx2_env)[0].reuse[0] == 2  # its own machine's row is reused
    assert ("machine_id", rows[1].env.machine_id, avx2_env.machine_id) in differences(rows[1], rows[2])


def env_with(flags: tuple[str, ...]):
    env = dataclasses.replace(make_env(), cpu_flags=flags, cpu_vendor="AuthenticAMD", cpu_family=25,
                              cpu_model_number=1, cpu_stepping=1)
    return dataclasses.replace(env, machine_id=machine_identity(env))


def test_a_store_with_rows_of_both_machines_never_reuses_or_groups_across_them(tmp_path):
    avx2, avx512 = env_with(("avx", "avx2")), env_with(("avx", "avx2", "avx512_bf16", "avx512_vnni", "avx512f"))
    assert avx2.machine_id != avx512.machine_id
    fp32, bf16 = make_spec(), make_spec(dtype="bf16")
    with Store(tmp_path / "s.sqlite") as st:
        fast = st.add(make_result(fp32, env=avx512, decode=28.0))
        st.add(make_result(bf16, env=avx512, decode=30.0))
        here = st.add(make_result(bf16, env=avx2, decode=14.6))
        steps = plan(st, [fp32, bf16], avx2)
        assert steps[0].reuse is None  # only the AVX-512 machine measured fp32: run it here
        assert steps[1].reuse[0] == here
        chosen, _ = group(st.results(), machine_id=avx2.machine_id)
        assert [i for i, _ in chosen] == [here]  # the AVX-512 rows are not this machine's
        fast_row, here_row = st.get(fast), st.get(here)
    assert ("machine_id", avx512.machine_id, avx2.machine_id) in differences(fast_row, here_row)
