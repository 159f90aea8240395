"""HAQ-style search: the budget adjustment, the action -> format mapping, the ILP, the DDPG loop and
the command's refusals (issue 13). Pure numpy/scipy except the small DDPG run and the CLI cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers.cli import assert_one_line_error, qs

from quantscope.errors import UserError
from quantscope.methods.haq.adjust import constrain, ilp
from quantscope.methods.haq.cost import CostTable, budget_range, cost_matrix
from quantscope.methods.haq.search import Budget, Problem, make_problem, search_ddpg, search_ilp
from quantscope.methods.haq.space import (
    LLAMACPP_FORMATS,
    TORCHAO_FORMATS,
    Layer,
    action_to_format,
    check_formats,
    layers_from_shape,
)
from quantscope.models.shape import shape_from_config
from quantscope.models.synthetic import config_for

pytestmark = pytest.mark.unit


def _layers(n: int, rng: np.random.Generator) -> list[Layer]:
    shapes = [(576, 576), (192, 576), (1536, 576), (576, 1536)]
    return [Layer(f"blk.{i}.w", f"m{i}", *shapes[rng.integers(4)], i, "attn_q") for i in range(n)]


@pytest.mark.parametrize("resource", ["bytes", "latency"])
def test_the_constrained_adjustment_always_meets_the_budget(resource):
    rng = np.random.default_rng(0)
    for trial in range(200):
        layers = _layers(int(rng.integers(1, 25)), rng)
        if resource == "bytes":
            cost, constant = cost_matrix("llamacpp", layers, LLAMACPP_FORMATS, "bytes")
        else:  # a latency table whose order of formats is not that of their bytes, and negative deltas
            per = {f"{r}x{c}": {f: float(rng.normal(0, 1e-4)) for f in LLAMACPP_FORMATS}
                   for r, c in [(576, 576), (192, 576), (1536, 576), (576, 1536)]}
            table = CostTable("llamacpp", "local:t", "measured", LLAMACPP_FORMATS, 0.01, per)
            cost, constant = cost_matrix("llamacpp", layers, LLAMACPP_FORMATS, "latency", table)
        lo, hi = budget_range(cost, constant)
        budget = float(rng.uniform(lo, hi)) if trial % 5 else lo  # the cheapest policy's cost exactly, too
        start = [LLAMACPP_FORMATS[j] for j in rng.integers(len(LLAMACPP_FORMATS), size=len(layers))]
        out = constrain(start, LLAMACPP_FORMATS, cost, constant, budget)
        total = constant + sum(cost[i, LLAMACPP_FORMATS.index(f)] for i, f in enumerate(out))
        assert total <= budget + 1e-12 * max(abs(budget), 1), (trial, total, budget)


def test_the_adjustment_walks_from_the_last_layer_and_leaves_a_fitting_policy_alone():
    cost = np.array([[1.0, 2.0, 3.0]] * 3)
    fmts = ("a", "b", "c")
    assert constrain(["c", "c", "c"], fmts, cost, 0.0, 9.0) == ["c", "c", "c"]
    assert constrain(["c", "c", "c"], fmts, cost, 0.0, 8.0) == ["c", "c", "b"]
    assert constrain(["c", "c", "c"], fmts, cost, 0.0, 6.0) == ["b", "b", "b"]
    with pytest.raises(UserError, match="below the cheapest"):
        constrain(["a"], fmts, cost[:1], 0.0, 0.5)


@pytest.mark.parametrize("formats", [LLAMACPP_FORMATS, TORCHAO_FORMATS, ("x", "y")])
def test_the_action_to_format_mapping_reaches_every_format_in_equal_strides(formats):
    actions = np.linspace(0, 1, 1001)
    hit = [action_to_format(a, formats) for a in actions]
    assert set(hit) == set(formats)
    assert hit[0] == formats[0] and hit[-1] == formats[-1]
    assert hit == sorted(hit, key=formats.index)  # monotone: a wider action never picks a cheaper format
    counts = [hit.count(f) for f in formats]
    assert max(counts) - min(counts) <= 2


def test_the_ilp_finds_the_optimum_of_a_hand_solved_case():
    # Three layers, formats (small, big) costing 1 and 2; budget 4 allows exactly one "big".
    # Sensitivities in "small": 5, 2, 9 (0 in big): upgrading layer 2 saves the most -> (s, s, b), total 7.
    s = np.array([[5.0, 0.0], [2.0, 0.0], [9.0, 0.0]])
    c = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    assert ilp(s, c, 0.0, 4.0, ("s", "b")) == ["s", "s", "b"]
    # Budget 5 allows two: layers 0 and 2 (saves 14) beat any other pair; checked against brute force.
    best = min(itertools.product(range(2), repeat=3),
               key=lambda x: sum(s[i, j] for i, j in enumerate(x)) if sum(c[i, j] for i, j in enumerate(x)) <= 5
               else np.inf)
    assert ilp(s, c, 0.0, 5.0, ("s", "b")) == [("s", "b")[j] for j in best] == ["b", "s", "b"]


def test_ddpg_keeps_haqs_shapes_and_every_episode_meets_the_budget():
    from quantscope.methods.haq.ddpg import DDPG

    layers = layers_from_shape(shape_from_config(config_for("tiny-llama")))
    cost, constant = cost_matrix("llamacpp", layers, LLAMACPP_FORMATS, "bytes")
    lo, hi = budget_range(cost, constant)
    p = Problem("llamacpp", layers, LLAMACPP_FORMATS, "bytes", cost, constant, lo + 0.3 * (hi - lo))
    seen = []

    def quality(policy):  # a stand-in quality: fewer bytes -> more "KLD"
        total = constant + sum(cost[i, LLAMACPP_FORMATS.index(f)] for i, f in enumerate(policy))
        seen.append(total)
        return 1.0 / total

    from quantscope.methods.haq.ddpg import DDPGConfig

    found = search_ddpg(p, quality, episodes=4, cfg=DDPGConfig(warmup=2, batch=8))
    assert len(found.history) == 4 and max(seen) <= p.budget
    agent = DDPG(7, len(layers))
    assert [m.out_features for m in agent.actor.net if hasattr(m, "out_features")] == [300, 300, 1]
    assert agent.critic.fc11.out_features == agent.critic.fc12.out_features == 300


def test_a_budget_outside_the_policies_range_names_the_range():
    shape = shape_from_config(config_for("tiny-llama"))
    layers = layers_from_shape(shape)
    with pytest.raises(UserError, match=r"below the smallest policy.*4\.5 to 16 bits per weight"):
        make_problem("llamacpp", shape, layers, LLAMACPP_FORMATS, Budget("bpw", 3.0), None, "q8_0")
    with pytest.raises(UserError, match="above the largest policy"):
        make_problem("llamacpp", shape, layers, LLAMACPP_FORMATS, Budget("bytes", 1e12), None, "q8_0")
    p = make_problem("llamacpp", shape, layers, LLAMACPP_FORMATS, Budget("bpw", 6.0), None, "q8_0")
    sens = np.tile(np.array([6.0, 5.0, 3.0, 2.0, 0.1, 0.0]), (len(layers), 1))
    assert search_ilp(p, sens).cost <= p.budget


def test_a_format_the_runtime_cannot_execute_is_refused_with_the_valid_ones():
    with pytest.raises(UserError, match="q4_k cannot be written per tensor here"):
        check_formats("llamacpp", ["q4_0", "q4_k"])
    with pytest.raises(UserError, match="cannot execute format 'nf4'"):
        check_formats("torchao", ["nf4", "none"])
    assert check_formats("llamacpp", ["q8_0", "q4_0"]) == ("q4_0", "q8_0")  # cost order, not given order


@pytest.mark.parametrize("args, needles", [
    (["--budget-bpw", "2"], ["below the smallest policy", "bits per weight"]),
    (["--budget-bpw", "40"], ["above the largest policy"]),
    (["--budget-bpw", "5", "--formats", "q4_0,iq2_xxs"], ["iq2_xxs"]),
    (["--budget-bpw", "5", "--formats", "q4_0,q6_k"], ["q6_k cannot be written per tensor"]),
    (["--budget-bpw", "5", "--export", "/nonexistent-dir/p.gguf"], ["does not exist"]),
    (["--budget-bpw", "5", "--budget-bytes", "100"], ["exactly one budget"]),
])
def test_search_bad_input_is_one_line_and_exit_2(tmp_path, args, needles):
    p = qs("search", "--model", "synthetic:tiny-llama", "--backend", "llamacpp", *args, store=tmp_path / "s.sqlite")
    assert_one_line_error(p, 2, *needles)
