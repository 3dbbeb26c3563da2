"""Fleets: n agents over K blocks, m of them asked each round (DESIGN.md §2, "Fleets").

A run's K blocks (the partition of theta) and its n agents are separate
settings. Each round every replica draws the same plan from the shared seed
stream, knowing only the round number:

    order = a permutation of the n agents        (Fisher-Yates on the stream)
    asked = order[:m]                            (m = n unless --per-round m)
    block of asked[i] = (offset + i) mod K       (offset drawn from the stream)

so a block gets floor(m/K) or ceil(m/K) agents (R = n/K when all are asked;
the m mod K blocks after `offset`, cyclically, get the extra one), and with
m < K a round updates m blocks, a different run of them each round. The
agents of one block evaluate the same perturbation v_{t,block}, each with its
own reset seeds and panel draws; the block's vote is the majority of their
votes (a tie or no vote at all: 0). One vote goes up per agent and K votes
come down, as before.

With one agent per block and every agent asked (n = K = m, the default), no
draw is made: agent k evaluates block k in every round, so today's runs stay
the same to the bit.
"""
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from fedzo.edge.learning import streams

NOT_ASKED = -1          # block_of[a] of an agent that sits this round out
_WORDS_PER_DRAW = 64    # stream words fetched at a time by the shuffle


@dataclass(frozen=True)
class RoundPlan:
    """Who evaluates which block in one round."""

    block_of: np.ndarray      # int32[n]: agent a's block this round, or NOT_ASKED

    def asked(self, agent: int) -> bool:
        """Does `agent` roll out and vote this round?"""
        return int(self.block_of[agent]) != NOT_ASKED

    def agents_of(self, block: int) -> np.ndarray:
        """The agents that evaluate `block` this round, in agent order."""
        return np.flatnonzero(self.block_of == block)

    @property
    def asked_agents(self) -> np.ndarray:
        return np.flatnonzero(self.block_of != NOT_ASKED)


class _Words:
    """Uniform uint64 words of one (seed, purpose, round) stream, fetched in batches."""

    def __init__(self, seed: int, round_: int):
        self.seed, self.round, self.next, self.buffer = seed, round_, 0, []

    def word(self) -> int:
        if not self.buffer:
            self.buffer = [int(w) for w in streams.words(self.seed, streams.PURPOSE_FLEET, 0, self.round,
                                                         self.next, _WORDS_PER_DRAW)]
            self.next += _WORDS_PER_DRAW
        return self.buffer.pop(0)

    def below(self, bound: int) -> int:
        """A uniform integer in [0, bound), without modulo bias (rejection of the top words)."""
        limit = (1 << 64) - (1 << 64) % bound
        while True:
            w = self.word()
            if w < limit:
                return w % bound


@lru_cache(maxsize=8)
def round_plan(seed: int, round_: int, agents: int, blocks: int, per_round: int = 0) -> RoundPlan:
    """The plan of round `round_` for n = `agents` over K = `blocks`, m = `per_round` (0: all)."""
    m = agents if per_round == 0 else per_round
    if not 1 <= blocks <= agents or not 1 <= m <= agents:
        raise ValueError(f"a plan needs 1 <= blocks <= agents and 1 <= per_round <= agents, "
                         f"got blocks={blocks}, agents={agents}, per_round={per_round}")
    if agents == blocks == m:
        identity = np.arange(agents, dtype=np.int32)
        identity.setflags(write=False)      # cached and shared, as every plan is: no one may edit it
        return RoundPlan(identity)
    draws = _Words(seed, round_)
    order = list(range(agents))
    for i in range(agents - 1, 0, -1):           # Fisher-Yates, the same on every replica
        j = draws.below(i + 1)
        order[i], order[j] = order[j], order[i]
    offset = draws.below(blocks)
    block_of = np.full(agents, NOT_ASKED, dtype=np.int32)
    for i, agent in enumerate(order[:m]):
        block_of[agent] = (offset + i) % blocks
    block_of.setflags(write=False)
    return RoundPlan(block_of)


def block_votes(plan: RoundPlan, votes: dict, blocks: int) -> list:
    """The K block votes: the sign of the sum of each block's agents' votes (0 if none voted).

    `votes` maps an agent to its vote (+1, -1 or 0); agents that did not vote are absent
    from it, and a vote from an agent the plan did not ask for that block does not count.
    """
    sums = [0] * blocks
    for agent, vote in votes.items():
        block = int(plan.block_of[agent])
        if block != NOT_ASKED:
            sums[block] += int(vote)
    return [(s > 0) - (s < 0) for s in sums]
