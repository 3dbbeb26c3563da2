"""Simulated misbehaving agents for fleet experiments: liars and sleepers.

A fleet is meant to survive devices that lie and devices that are not there.
These in-process agents stand in for them, seeded so a run can be repeated:

    dishonest=L     agents 0..L-1 lie in every round they are asked
    lie=flip        a liar sends the opposite of its honest vote (the worst case
                    for a majority: it needs the rollouts to know what to flip)
    lie=random      a liar sends a random sign (no rollouts)
    dropout=P       in each round, each asked agent is asleep with probability P:
                    it does no rollouts and abstains (Vote 0, which the
                    coordinator counts as no vote, as for a device asleep at
                    the deadline, without making the simulation wait for it)

Written as one option: `--behaviour dishonest=5,lie=flip,dropout=0.2`. The
liars are the first L agent ids; each round's plan (edge/learning/fleet.py)
shuffles agents over blocks, so with L = f*K a block holds f liars on average,
not exactly f (docs/fleets.md).
"""
from dataclasses import dataclass, fields

import numpy as np

from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.learning import streams
from fedzo.edge.protocol import RoundStart, Vote

LIES = ("flip", "random")


class BehaviourError(ValueError):
    """A --behaviour text that does not parse; the text says what is accepted."""


@dataclass(frozen=True)
class Behaviour:
    """How the simulated agents of a run misbehave (all zero: every agent honest and awake)."""

    dishonest: int = 0
    lie: str = "flip"
    dropout: float = 0.0

    def __post_init__(self):
        if not isinstance(self.dishonest, int) or isinstance(self.dishonest, bool) or self.dishonest < 0:
            raise BehaviourError(f"dishonest must be a whole number >= 0, got {self.dishonest!r}")
        if self.lie not in LIES:
            raise BehaviourError(f"lie must be one of {', '.join(LIES)}, got {self.lie!r}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise BehaviourError(f"dropout must be a probability in [0, 1), got {self.dropout!r}")

    @property
    def active(self) -> bool:
        return self.dishonest > 0 or self.dropout > 0

    @classmethod
    def parse(cls, text: str) -> "Behaviour":
        """'dishonest=5,lie=flip,dropout=0.2' (any subset; '' is honest)."""
        values = {}
        types = {f.name: f.type for f in fields(cls)}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            if not sep or name not in types:
                raise BehaviourError(f"--behaviour takes name=value items of {', '.join(types)}; got {part!r}")
            try:
                values[name] = types[name](value)
            except ValueError:
                raise BehaviourError(f"--behaviour {name} must be a {types[name].__name__}, got {value!r}") from None
        return cls(**values)

    def as_dict(self) -> dict:
        return {"dishonest": self.dishonest, "lie": self.lie, "dropout": self.dropout}


class SimulatedAgent(AgentRuntime):
    """An in-process agent that may lie or sleep through rounds, as `behaviour` says."""

    def __init__(self, behaviour: Behaviour, **kwargs):
        super().__init__(**kwargs)
        self.behaviour = behaviour
        self.slept = self.lied = 0

    @property
    def liar(self) -> bool:
        """The first `dishonest` agent ids lie (the id the coordinator's Welcome gave)."""
        return self.logic is not None and self.logic.index < self.behaviour.dishonest

    def _draws(self, round_: int) -> np.random.Generator:
        """This agent's own draws for round t (asleep or not, a random lie's sign)."""
        return streams.generator(self.logic.config.seed, streams.PURPOSE_SIMULATION, self.logic.index, round_)

    def _on_round_start(self, msg: RoundStart) -> list:
        if self.logic is None or not self.synced or self.round != msg.round:
            return super()._on_round_start(msg)
        draws = self._draws(msg.round)
        if draws.random() < self.behaviour.dropout:
            self.slept += 1
            self.voted = msg.round
            return [Vote(msg.round, 0, self.logic.digest())]
        if self.liar and self.behaviour.lie == "random":
            self.lied += 1
            self.voted = msg.round
            return [Vote(msg.round, 1 if draws.random() < 0.5 else -1, self.logic.digest())]
        replies = super()._on_round_start(msg)
        if self.liar:
            self.lied += 1
            replies = [Vote(r.round, -r.vote, r.theta_hash) if isinstance(r, Vote) else r for r in replies]
        return replies


def simulated_agents(count: int, behaviour: Behaviour, **kwargs) -> list:
    """`count` in-process agents: plain ones when `behaviour` is honest and awake."""
    if not behaviour.active:
        return [AgentRuntime(**kwargs) for _ in range(count)]
    if behaviour.dishonest > count:
        raise BehaviourError(f"dishonest={behaviour.dishonest} is more than the run's {count} agents")
    return [SimulatedAgent(behaviour, **kwargs) for _ in range(count)]
