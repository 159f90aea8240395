"""HAQ's agent: DDPG with a 300-300 actor and critic (mit-han-lab/haq lib/rl/ddpg.py, rl_quantize.py).

Kept from the paper's code, with its defaults: hidden 300/300 (rl_quantize.py --hidden1/--hidden2);
actor lr 1e-4, critic lr 1e-3; tau 0.01; discount 1; batch 64; replay memory 128 transitions per
layer; warm-up episodes with uniform random actions (20 there); exploration by a truncated normal
around the actor's action on [0, 1] whose sigma starts at 0.5 and decays by 0.99 per episode after the
warm-up; every transition of an episode gets the episode's final reward; a moving-average baseline
(alpha 0.5) is subtracted from each batch's rewards; one update per transition after the warm-up.
Changed: the reward is -KLD(policy || reference) in nats instead of 0.1 x (accuracy - original
accuracy) — a language model has no top-1 accuracy to keep, and KLD is already small (the baseline
removes its scale); the final layer's transition is terminal. Episodes default to fewer than the
paper's 600 so a search fits 30 min on 2 cores (benchmarks/haq_search.py --episodes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DDPGConfig:
    hidden1: int = 300
    hidden2: int = 300
    lr_actor: float = 1e-4
    lr_critic: float = 1e-3
    tau: float = 0.01
    discount: float = 1.0
    batch: int = 64
    memory_per_layer: int = 128
    warmup: int = 20
    init_delta: float = 0.5
    delta_decay: float = 0.99
    moving_alpha: float = 0.5
    seed: int = 234  # rl_quantize.py's default seed


def truncated_normal(rng: np.random.Generator, mu: float, sigma: float, lower: float = 0.0,
                     upper: float = 1.0) -> float:
    """One draw of N(mu, sigma) truncated to [lower, upper] (haq lib/utils sample_from_truncated_normal)."""
    if sigma <= 0:
        return float(np.clip(mu, lower, upper))
    from scipy.stats import truncnorm

    a, b = (lower - mu) / sigma, (upper - mu) / sigma
    return float(np.clip(truncnorm.rvs(a, b, loc=mu, scale=sigma, random_state=rng), lower, upper))


def _nets(n_states: int, cfg: DDPGConfig) -> tuple[Any, Any]:
    import torch
    from torch import nn

    class Actor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(n_states, cfg.hidden1), nn.ReLU(), nn.Linear(cfg.hidden1, cfg.hidden2),
                                     nn.ReLU(), nn.Linear(cfg.hidden2, 1), nn.Sigmoid())

        def forward(self, x: Any) -> Any:
            return self.net(x)

    class Critic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc11, self.fc12 = nn.Linear(n_states, cfg.hidden1), nn.Linear(1, cfg.hidden1)
            self.rest = nn.Sequential(nn.ReLU(), nn.Linear(cfg.hidden1, cfg.hidden2), nn.ReLU(),
                                      nn.Linear(cfg.hidden2, 1))

        def forward(self, x: Any, a: Any) -> Any:
            return self.rest(self.fc11(x) + self.fc12(a))

    torch.manual_seed(cfg.seed)
    return Actor(), Critic()


class DDPG:
    """The agent: `act` picks an action for a state, `observe` stores a transition, `update` learns."""

    def __init__(self, n_states: int, n_layers: int, cfg: DDPGConfig = DDPGConfig()) -> None:
        import copy

        import torch

        self.cfg = cfg
        self.actor, self.critic = _nets(n_states, cfg)
        self.actor_target, self.critic_target = copy.deepcopy(self.actor), copy.deepcopy(self.critic)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr_actor)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr_critic)
        self.limit = cfg.memory_per_layer * n_layers
        self.memory: list[tuple[np.ndarray, float, float, np.ndarray, bool]] = []
        self.rng = np.random.default_rng(cfg.seed)
        self.moving_average: float | None = None
        self.delta = cfg.init_delta

    def act(self, state: np.ndarray, episode: int) -> float:
        """Uniform during the warm-up; afterwards the actor's action with decaying truncated-normal noise."""
        import torch

        if episode < self.cfg.warmup:
            return float(self.rng.uniform(0.0, 1.0))
        with torch.no_grad():
            mu = float(self.actor(torch.as_tensor(state, dtype=torch.float32)[None])[0, 0])
        self.delta = self.cfg.init_delta * self.cfg.delta_decay ** (episode - self.cfg.warmup)
        return truncated_normal(self.rng, mu, self.delta)

    def observe(self, state: np.ndarray, action: float, reward: float, next_state: np.ndarray, done: bool) -> None:
        self.memory.append((state, action, reward, next_state, done))
        del self.memory[:-self.limit]

    def update(self) -> None:
        import torch

        cfg = self.cfg
        if len(self.memory) < cfg.batch:
            return
        pick = self.rng.choice(len(self.memory), cfg.batch, replace=False)
        s, a, r, s1, done = (np.array(x) for x in zip(*(self.memory[i] for i in pick), strict=True))
        mean = float(r.mean())
        self.moving_average = mean if self.moving_average is None else \
            self.moving_average + cfg.moving_alpha * (mean - self.moving_average)
        t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32))  # noqa: E731
        s_t, a_t, s1_t = t(s), t(a)[:, None], t(s1)
        with torch.no_grad():
            target = t(r - self.moving_average)[:, None] + cfg.discount * t(1.0 - done)[:, None] * \
                self.critic_target(s1_t, self.actor_target(s1_t))
        self.critic_opt.zero_grad()
        torch.nn.functional.mse_loss(self.critic(s_t, a_t), target).backward()
        self.critic_opt.step()
        self.actor_opt.zero_grad()
        (-self.critic(s_t, self.actor(s_t)).mean()).backward()
        self.actor_opt.step()
        for net, tgt in ((self.actor, self.actor_target), (self.critic, self.critic_target)):
            for p, q in zip(net.parameters(), tgt.parameters(), strict=True):
                q.data.mul_(1 - cfg.tau).add_(cfg.tau * p.data)


def state_embedding(layers: list[Any]) -> np.ndarray:
    """HAQ's static per-layer state, min-max normalised per column: index, layer kind, in and out
    features, weight count, block index; the last column (the previous layer's action) is filled in
    as the episode goes (quantize_env.py `_build_state_embedding`)."""
    from quantscope.methods.haq.space import KINDS

    rows = [[i, KINDS.index(lay.kind), lay.in_features, lay.out_features, lay.params, lay.block, 1.0]
            for i, lay in enumerate(layers)]
    emb = np.array(rows, dtype=np.float64)
    for c in range(emb.shape[1] - 1):
        lo, hi = emb[:, c].min(), emb[:, c].max()
        emb[:, c] = (emb[:, c] - lo) / (hi - lo) if hi > lo else 0.0
    return emb
