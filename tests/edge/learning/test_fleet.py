"""A fleet's round plan: who evaluates which block, and the block's majority vote."""
import numpy as np
import pytest

from fedzo.edge.learning.config import ConfigError, RunConfig
from fedzo.edge.learning.fleet import NOT_ASKED, block_votes, round_plan

# Plans of this implementation, pinned when it was written (seed 0): a change of the
# shuffle or of its stream would split the replicas of agents of different versions.
PINNED_6_2 = [1, 1, 0, 0, 0, 1]
PINNED_6_3_4 = [-1, 1, 2, 0, -1, 2]


def test_one_agent_per_block_keeps_agent_k_on_block_k():
    # n = K = m: today's runs, no draw, block k is agent k's in every round.
    for round_ in range(5):
        assert round_plan(3, round_, 7, 7).block_of.tolist() == list(range(7))


@pytest.mark.parametrize("agents,blocks,per_round", [(15, 5, 0), (15, 3, 0), (16, 5, 0), (15, 5, 12),
                                                     (10, 10, 4), (9, 4, 2), (1000, 15, 0)])
def test_every_asked_agent_gets_one_block_and_blocks_share_them_evenly(agents, blocks, per_round):
    m = per_round or agents
    for round_ in range(6):
        plan = round_plan(11, round_, agents, blocks, per_round)
        assert len(plan.block_of) == agents
        assert (plan.block_of != NOT_ASKED).sum() == m
        sizes = [len(plan.agents_of(b)) for b in range(blocks)]
        assert sum(sizes) == m
        assert max(sizes) - min(sizes) <= 1          # floor(m/K) or ceil(m/K) agents per block


@pytest.mark.parametrize("agents, blocks, per_round", [(5, 5, 0), (6, 3, 0), (6, 3, 4)])
def test_a_plan_is_cached_and_shared_so_it_cannot_be_edited(agents, blocks, per_round):
    plan = round_plan(9, 4, agents, blocks, per_round)
    assert round_plan(9, 4, agents, blocks, per_round) is plan      # the same object for every caller
    with pytest.raises(ValueError, match="read-only"):
        plan.block_of[0] = 1


def test_the_plan_follows_from_seed_and_round_alone():
    a = [round_plan(5, t, 12, 4).block_of.tolist() for t in range(8)]
    b = [round_plan(5, t, 12, 4).block_of.tolist() for t in range(8)]
    c = [round_plan(6, t, 12, 4).block_of.tolist() for t in range(8)]
    assert a == b and a != c
    assert len({tuple(p) for p in a}) > 1            # the assignment changes from round to round


def test_the_plan_is_pinned_across_platforms():
    # Fisher-Yates on the kernel's Philox words with rejection: these bits must never move
    # (every replica, on every architecture and NumPy version, derives the same plan).
    assert round_plan(0, 0, 6, 2).block_of.tolist() == PINNED_6_2
    assert round_plan(0, 3, 6, 3, 4).block_of.tolist() == PINNED_6_3_4


def test_sampling_reaches_every_agent_and_every_block():
    asked = np.zeros(20, int)
    updated = np.zeros(8, int)
    for t in range(200):
        plan = round_plan(1, t, 20, 8, 5)           # m = 5 < K = 8: each round updates 5 blocks
        asked[plan.asked_agents] += 1
        updated[np.unique(plan.block_of[plan.block_of != NOT_ASKED])] += 1
    assert asked.min() > 0 and updated.min() > 0
    assert asked.sum() == 200 * 5


def test_block_vote_is_the_majority_and_a_tie_or_silence_is_zero():
    plan = round_plan(2, 0, 9, 3)
    members = [plan.agents_of(b) for b in range(3)]
    votes = {int(members[0][0]): 1, int(members[0][1]): 1, int(members[0][2]): -1,     # block 0: +1
             int(members[1][0]): 1, int(members[1][1]): -1}                             # block 1: a tie
    assert block_votes(plan, votes, 3) == [1, 0, 0]                                    # block 2: no vote
    # Abstentions (0) count as no vote; a vote from an agent not asked this round does not count.
    sampled = round_plan(2, 0, 9, 3, 3)
    outsider = int(np.flatnonzero(sampled.block_of == NOT_ASKED)[0])
    assert block_votes(sampled, {outsider: 1}, 3) == [0, 0, 0]


def test_fleet_settings_are_checked():
    assert RunConfig(agents=15, blocks=5).block_count == 5
    assert RunConfig(agents=15).block_count == 15
    assert RunConfig(agents=15, per_round=6).asked_per_round == 6
    assert RunConfig(agents=15, blocks=5, per_round=10).episodes_per_round == 10 * 1 * 2 * 2
    with pytest.raises(ConfigError, match="blocks must be 0 or between 1 and agents"):
        RunConfig(agents=4, blocks=5)
    with pytest.raises(ConfigError, match="per_round"):
        RunConfig(agents=4, per_round=9)
    with pytest.raises(ConfigError, match="par-s2zpo only"):
        RunConfig(agents=4, blocks=2, algo="fedavg-s2zpo")
