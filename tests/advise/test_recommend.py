"""The recommendation on a fixture store: the expected choice, with the expected explanation."""

import pytest
from helpers.results import make_result, make_spec, store_with, sweep_fixture
from typer.testing import CliRunner

from quantscope.advise.recommend import Constraints, recommend
from quantscope.analysis.summary import summarize
from quantscope.errors import UserError
from quantscope.present.units import parse_bytes

pytestmark = pytest.mark.unit


def summaries(results=None):
    return [summarize(i + 1, r) for i, r in enumerate(results or sweep_fixture())]


def labels(rows):
    return [s.label for s in rows]


def excluded_by(rec):
    return {v[0].summary.label: [(e.constraint, e.detail) for e in v] for v in rec.excluded}


def test_speed_without_constraints_picks_the_fastest_and_excludes_the_unsupported_row():
    rec = recommend(summaries(), "speed", Constraints())
    assert rec.winner.label == "llamacpp/q4_0/fp32"
    assert labels(rec.runners_up) == ["llamacpp/q8_0/fp32", "torch/bf16", "torch/fp32"]
    ex = excluded_by(rec)
    assert list(ex) == ["torchao/float8-dynamic/bf16"]
    assert ex["torchao/float8-dynamic/bf16"][0][0] == "status"
    assert "unsupported" in ex["torchao/float8-dynamic/bf16"][0][1]
    # the evidence: the winner's lead over the runner-up is tested on the raw repetitions
    assert any("llamacpp/q8_0/fp32" in r and "faster, significant (Welch p=" in r for r in rec.reasons)


def test_a_kld_limit_excludes_q4_0_and_says_which_constraint():
    rec = recommend(summaries(), "speed", Constraints(max_kld=0.05))
    assert rec.winner.label == "llamacpp/q8_0/fp32"
    ex = excluded_by(rec)
    (constraint, detail), = ex["llamacpp/q4_0/fp32"]
    assert constraint == "max-kld"
    assert detail.startswith("KLD 0.0") and detail.endswith("> 0.05 nat")
    assert "constraints: KLD <= 0.05 nat; 3 of 5 configurations meet them" in rec.reasons


def test_memory_goal_picks_the_smallest_peak_rss_within_quality_limits():
    assert recommend(summaries(), "memory", Constraints()).winner.label == "llamacpp/q4_0/fp32"
    rec = recommend(summaries(), "memory", Constraints(max_kld=0.05, min_top1=0.9))
    assert rec.winner.label == "llamacpp/q8_0/fp32"
    assert any(r.startswith("llamacpp/q8_0/fp32 has the lowest peak RSS: 300.0 MiB") for r in rec.reasons)
    assert [c for c, _ in excluded_by(rec)["llamacpp/q4_0/fp32"]] == ["max-kld", "min-top1"]


def test_balanced_applies_a_default_kld_limit_and_names_the_baseline():
    rec = recommend(summaries(), "balanced", Constraints())
    assert rec.constraints.max_kld == 0.05
    assert rec.winner.label == "llamacpp/q8_0/fp32"  # q4_0 would win on speed x size, but fails the default KLD
    assert rec.reasons[0].startswith("goal balanced applies KLD <= 0.05 nat by default")
    assert any("best speed-up x memory saving against torch/fp32" in r for r in rec.reasons)
    assert rec.baseline.label == "torch/fp32"


def test_the_reference_counts_as_kld_zero_and_top1_one():
    rec = recommend(summaries(), "speed", Constraints(max_kld=0.0001, min_top1=0.999))
    assert rec.winner.label == "torch/fp32"
    assert "torch/bf16" in excluded_by(rec)


def test_when_nothing_fits_it_says_so_and_names_the_nearest_miss():
    rec = recommend(summaries(), "speed", Constraints(max_memory_bytes=parse_bytes("150MiB")))
    assert rec.winner is None and rec.runners_up == []
    assert rec.nearest_miss[0].summary.label == "llamacpp/q4_0/fp32"  # 200 MiB: the smallest excess
    assert rec.reasons[-1].startswith("nothing satisfies the constraints; nearest miss: llamacpp/q4_0/fp32")
    assert "peak RSS 200.0 MiB > 150.0 MiB" in rec.reasons[-1]


def test_a_lead_within_the_noise_is_called_a_tie():
    rows = [make_result(make_spec(), decode=30.0, decode_sd=3.0, seed=11),
            make_result(make_spec(dtype="bf16"), decode=30.5, decode_sd=3.0, kld=0.001, top1=0.99, seed=12)]
    rec = recommend(summaries(rows), "speed", Constraints())
    assert rec.reasons[-1].endswith("the lead is within the noise, so either is a sound choice")
    assert "no significant difference" in rec.reasons[-1]


def test_a_constraint_on_an_unmeasured_figure_excludes_the_row():
    rows = [make_result(make_spec(), ppl_nll=None, seed=1),
            make_result(make_spec(dtype="bf16"), ppl_nll=None, seed=2)]
    rec = recommend(summaries(rows), "speed", Constraints(max_kld=0.05))
    assert rec.winner is None
    assert "KLD not measured" in excluded_by(rec)["torch/bf16"][0][1]
    assert "no row comes near" in rec.reasons[-1]


def test_parse_bytes_units_and_errors():
    assert parse_bytes("2GiB") == 2 << 30
    assert parse_bytes("512 MiB") == 512 << 20
    assert parse_bytes("1.5GB") == 1_500_000_000
    with pytest.raises(UserError, match="2 gigs"):
        parse_bytes("2 gigs")


def test_unknown_goal_is_a_user_error():
    with pytest.raises(UserError, match="goal 'fast' is not one of speed, memory, balanced"):
        recommend(summaries(), "fast", Constraints())


def test_recommend_command_prints_winner_exclusions_and_evidence(tmp_path):
    from quantscope.cli import app

    store = tmp_path / "s.sqlite"
    ids = store_with(store, sweep_fixture())
    res = CliRunner().invoke(app, ["recommend", "--goal", "speed", "--max-kld", "0.05", "--store", str(store)])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert f"ship llamacpp/q8_0/fp32 (run {ids[2]})" in out
    assert "decode 4" in out and "tok/s (95% CI, N=5)" in out
    assert f"llamacpp/q4_0/fp32 (run {ids[3]}): max-kld: KLD" in out
    assert "torchao/float8-dynamic/bf16" in out and "status: unsupported" in out


def test_recommend_command_exit_1_when_nothing_fits(tmp_path):
    from quantscope.cli import app

    store = tmp_path / "s.sqlite"
    store_with(store, sweep_fixture())
    res = CliRunner().invoke(app, ["recommend", "--max-memory", "100MiB", "--store", str(store)])
    assert res.exit_code == 1
    assert "no configuration satisfies the constraints" in res.output
    assert "nearest miss: llamacpp/q4_0/fp32" in " ".join(res.output.split())


def test_a_later_lone_run_with_another_workload_never_hides_the_sweep(tmp_path):
    """Issue 21's reproduction: sweep, then one `run` with the default workload, then `recommend`."""
    from quantscope.cli import app
    from quantscope.spec import WorkloadSpec

    store = tmp_path / "s.sqlite"
    ids = store_with(store, sweep_fixture())
    later = make_result(make_spec(dtype="bf16", workload=WorkloadSpec(gen_tokens=16)), kld=0.002, top1=0.99)
    (lone,) = store_with(store, [later])  # a lone run with another workload, newer than the sweep
    res = CliRunner().invoke(app, ["recommend", "--goal", "speed", "--store", str(store)])
    out = " ".join(res.output.split())
    assert f"ship llamacpp/q4_0/fp32 (run {ids[3]})" in out  # the sweep's winner, not the lone run
    assert "group 2 of 2 (the newest sweep): 5 configurations of SmolLM2-135M-Instruct" in out
    assert "left out 1 configuration in other groups" in out
    assert f"group 1: 1 configuration, newest run {lone}: workload.gen_tokens=16," in out
    assert f"(--group 1 or --like {lone})" in out
    # the lone run is one flag away, and then the sweep is what was left out
    for flags in (["--group", "1"], ["--like", str(lone)]):
        res = CliRunner().invoke(app, ["recommend", "--goal", "speed", *flags, "--store", str(store)])
        out = " ".join(res.output.split())
        assert f"ship torch/bf16 (run {lone})" in out and "left out 5 configurations" in out, out


def test_group_selection_prefers_the_newest_sweep_then_the_largest_group_of_the_newest_model():
    from quantscope.analysis.selection import default_group, groups
    from quantscope.spec import WorkloadSpec

    def rows(results):
        return [(i + 1, r) for i, r in enumerate(results)][::-1]  # the store lists newest first

    short = WorkloadSpec(gen_tokens=16)
    old_sweep = [make_result(make_spec(dtype=d)) for d in ("fp32", "bf16", "fp16")]
    new_sweep = [make_result(make_spec(dtype=d, workload=short)) for d in ("fp32", "bf16")]
    lone = [make_result(make_spec(workload=WorkloadSpec(gen_tokens=8)))]
    gs = groups(rows(old_sweep + new_sweep + lone))
    assert [len(g) for g in gs] == [1, 2, 3]  # newest group first
    assert default_group(gs) == 1  # the newest sweep, though smaller than the older one
    assert default_group(groups(rows(lone))) == 0  # no sweep at all: the run itself
    other_model = [make_result(make_spec(model_ref="tiny", dtype=d)) for d in ("fp32", "bf16")]
    gs = groups(rows(old_sweep + other_model + lone))
    assert gs[default_group(gs)].model == "tiny"  # the newest sweep, whatever its model


def test_a_group_number_that_does_not_exist_is_one_line_naming_the_range(tmp_path):
    from quantscope.advise.group import load_group
    from quantscope.store import Store

    store = tmp_path / "s.sqlite"
    store_with(store, sweep_fixture())
    with Store(store, readonly=True) as st, pytest.raises(UserError, match="groups 1 to 1"):
        load_group(st, group=3)
    with Store(store, readonly=True) as st, pytest.raises(UserError, match="give one of them"):
        load_group(st, like="1", group=1)


def test_report_writes_one_section_per_group_and_notes_what_it_left_out(tmp_path):
    from quantscope.cli import app
    from quantscope.spec import WorkloadSpec

    store = tmp_path / "s.sqlite"
    store_with(store, sweep_fixture())
    store_with(store, [make_result(make_spec(workload=WorkloadSpec(gen_tokens=16)))])
    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", "--out", str(out), "--store", str(store)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "group 2 of 2 (the newest sweep)" in html and "left out 1 configuration" in html
    res = CliRunner().invoke(app, ["report", "--group", "all", "--out", str(out), "--store", str(store)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert html.count('<section class="group">') == 2 and html.count("</body>") == 1
    assert "group 1 of 2: 1 configuration of" in html and "group 2 of 2: 5 configurations of" in html
