"""Where each parameter of the policy lives in the flat vector theta (DESIGN.md §2).

The policy is an MLP; theta lists its layers in order, each layer's weights
row-major with shape (outputs, inputs), then that layer's biases. theta is
partitioned into K contiguous blocks, block k = [floor(k*d/K), floor((k+1)*d/K)),
one per agent in Par-S2ZPO.
"""
from dataclasses import dataclass

DEFAULT_HIDDEN = (64, 64)
MAX_HIDDEN_LAYERS = 16          # what an actor file may declare (edge/policy/mlp.py)
MAX_HIDDEN_WIDTH = 1 << 12      # units in one hidden layer


def parse_hidden(text: str) -> tuple:
    """Hidden layer widths from their written form, "64,64" -> (64, 64).

    ValueError saying what is wrong: one to MAX_HIDDEN_LAYERS whole numbers,
    each from 1 to MAX_HIDDEN_WIDTH, separated by commas."""
    parts = [p.strip() for p in str(text).split(",")]
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"must be layer widths separated by commas, such as 64,64; got {text!r}")
    widths = tuple(int(p) for p in parts)
    if len(widths) > MAX_HIDDEN_LAYERS or not all(1 <= w <= MAX_HIDDEN_WIDTH for w in widths):
        raise ValueError(f"must be 1 to {MAX_HIDDEN_LAYERS} layers of 1 to {MAX_HIDDEN_WIDTH} units; got {text!r}")
    return widths


def format_hidden(widths) -> str:
    """The written form of hidden widths, (32, 32) -> "32,32" (a run config's `hidden`)."""
    return ",".join(str(int(w)) for w in widths)


@dataclass(frozen=True)
class LayerSlices:
    """Offsets of one layer's weights and biases in theta."""

    inputs: int
    outputs: int
    weight_start: int
    bias_start: int

    @property
    def stop(self) -> int:
        return self.bias_start + self.outputs


def mlp_layers(obs_dim: int, act_dim: int, hidden=DEFAULT_HIDDEN) -> list:
    """The LayerSlices of an MLP obs_dim -> hidden... -> act_dim."""
    sizes = [obs_dim, *hidden, act_dim]
    layers, offset = [], 0
    for inputs, outputs in zip(sizes[:-1], sizes[1:]):
        layers.append(LayerSlices(inputs, outputs, offset, offset + inputs * outputs))
        offset += inputs * outputs + outputs
    return layers


def mlp_param_count(obs_dim: int, act_dim: int, hidden=DEFAULT_HIDDEN) -> int:
    """d, the length of theta for this MLP."""
    return mlp_layers(obs_dim, act_dim, hidden)[-1].stop


def block_bounds(d: int, agents: int, k: int) -> tuple:
    """Element range [start, stop) of block k of a d-vector split into `agents` blocks."""
    if not 1 <= agents <= d:
        raise ValueError(f"need 1 <= agents <= d, got agents={agents}, d={d}")
    if not 0 <= k < agents:
        raise ValueError(f"block index {k} outside [0, {agents})")
    return (k * d) // agents, ((k + 1) * d) // agents


def partition(d: int, agents: int) -> list:
    """All K blocks as (start, stop) pairs, in order; together they cover [0, d)."""
    return [block_bounds(d, agents, k) for k in range(agents)]
