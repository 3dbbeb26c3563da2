"""Stream ids of the shared-seed generator (DESIGN.md §4), in one table.

Every random draw of a run comes from the Philox stream (run seed, stream id,
round). Block k's perturbation uses stream id k. Every other use sets a
purpose tag in the top byte of the id, so it never collides with a block id
(block ids stay below 2**56) or with another use.
"""
import numpy as np

from fedzo.edge import kernel

_PURPOSE_SHIFT = 56
MAX_BLOCKS = 1 << _PURPOSE_SHIFT

PURPOSE_FEDAVG_VECTOR = 1   # FedAvg-S2ZPO: agent k's whole-vector perturbation
PURPOSE_TIE_BIT = 2         # the tie-breaking bit of agent k's vote (N even)
PURPOSE_RESET_SEED = 3      # agent k's episode reset seeds
PURPOSE_PANEL = 4           # the simulated panel's reviewer draws at agent k
PURPOSE_EVAL = 5            # evaluation episodes' reset seeds (index 0)
PURPOSE_FLEET = 6           # a fleet's round plan: which agents evaluate which block (index 0)
PURPOSE_SIMULATION = 7      # simulated misbehaviour of agent k (firmware_sim/behaviour.py)


def block_stream(k: int) -> int:
    """Stream id of block k's perturbation."""
    if not 0 <= k < MAX_BLOCKS:
        raise ValueError(f"block index {k} out of range")
    return k


def stream_id(purpose: int, index: int) -> int:
    """Stream id of a non-block use, for agent (or other) `index`."""
    if not 0 <= index < MAX_BLOCKS:
        raise ValueError(f"stream index {index} out of range")
    return (purpose << _PURPOSE_SHIFT) | index


def words(seed: int, purpose: int, index: int, round_: int, first: int, count: int):
    """`count` uint64 words of a non-block stream, from word `first`."""
    return kernel.stream_words(seed, stream_id(purpose, index), round_, first, count)


def reset_seeds(seed: int, agent: int, round_: int, count: int) -> list:
    """Episode reset seeds for one agent and round (32-bit, for numpy generators)."""
    return [int(w) >> 32 for w in words(seed, PURPOSE_RESET_SEED, agent, round_, 0, count)]


def eval_seeds(seed: int, count: int) -> list:
    """The fixed evaluation episodes' reset seeds of a run."""
    return [int(w) >> 32 for w in words(seed, PURPOSE_EVAL, 0, 0, 0, count)]


def tie_bit(seed: int, agent: int, round_: int) -> int:
    """A bit from the seed stream: +1 or -1, to break a tied vote."""
    return 1 if int(words(seed, PURPOSE_TIE_BIT, agent, round_, 0, 1)[0]) & 1 else -1


def generator(seed: int, purpose: int, index: int, round_: int, sub: int = 0) -> np.random.Generator:
    """A NumPy generator on its own Philox stream (e.g. the panel's draws for comparison `sub`)."""
    key = np.array([seed, stream_id(purpose, index)], dtype=np.uint64)
    # Counter words 2 and 3 are never used by the word streams, so `sub` keeps
    # these generators apart from them and from each other.
    return np.random.Generator(np.random.Philox(key=key, counter=np.array([0, round_, sub + 1, 0], dtype=np.uint64)))
