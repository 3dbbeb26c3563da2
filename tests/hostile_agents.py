"""Agents that lie: an AgentRuntime whose answer to a RoundStart is chosen by the test."""
import numpy as np

from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.protocol import ModelUpload, Vote, model_chunks


class LyingAgent(AgentRuntime):
    """Answers `times` RoundStarts with lie(agent, msg) instead of its work (None: every one)."""

    def __init__(self, lie, times=None, **kwargs):
        super().__init__(**kwargs)
        self.lie, self.times, self.lies = lie, times, 0

    def _on_round_start(self, msg):
        if self.logic is None or (self.times is not None and self.lies >= self.times):
            return super()._on_round_start(msg)
        self.lies += 1
        return self.lie(self, msg)


def wrong_size_upload(agent, msg):
    """A ModelUpload claiming d + 1 elements (any algorithm)."""
    return [ModelUpload(msg.round, agent.logic.store.d + 1, 0, b"\0\0\0\0")]


def model_of(value):
    """A lie: a whole FedAvg model of `value` (alternating sign), then a vote on the true theta."""
    def lie(agent, msg):
        model = np.full(agent.logic.store.d, value, np.float32)
        model[1::2] *= -1
        return model_chunks(ModelUpload, msg.round, model) + [Vote(msg.round, 1, agent.logic.digest())]
    return lie
