"""Preference sources (DESIGN.md §3): who answers "which batch was better?".

A `PreferenceSource` is shown two batches of trajectories, the baseline
(under theta) and the candidate (under theta + mu v), and answers +1 if the
candidate is preferred, else -1. The learning update sees only these answers.

`SimulatedPanel` is the default: M reviewers each prefer the candidate with
probability sigma(R' - R), where R', R are the batches' mean true returns,
and the panel answers by majority (M odd). `CoinFlip` is the null control:
it answers with a fair coin and never looks at the batches, so a run that
uses it is a random walk with the same step sizes, and whatever a method
gains beyond that walk is what its preferences taught it. A person answers
through the same interface (fedzo.edge.human: a page served by the agent,
or a replay of a person's recorded answers).

A source may answer 0, "can't tell": the vote's tie rule then applies to
the comparisons' sum. Each comparison also comes with `where` (agent,
round, comparison), which a person's source shows and records; a source that
wants to show the batches returns a clip recorder from `clip_recorder(task)`,
and the rollouts then keep each episode's body poses in `Batch.clips`.

`make_preference(config)` builds the source a run config names
(`preference`: "panel" or "coin"; "human" needs a source the agent is given).
"""
import abc
import math
from dataclasses import dataclass, field

import numpy as np

LINKS = ("linear", "logistic", "probit")
PREFERENCES = ("panel", "coin", "human")   # the run config's `preference` choices
DEFAULT_REVIEWERS = 101

# Per-task scale c of the link, in return units for 1000-step episodes (a
# shorter horizon scales it down in proportion, see RunConfig.scale). Chosen
# by `fedzo calibrate --samples 40` on the packaged actors at the default
# mu = 0.01 with D = 2 and K = 5: c = 5 x the median |R(theta + mu v) - R(theta)|
# (medians 14.3, 20.6, 24.5, 1.17), rounded. A median-sized difference moves
# one reviewer to p = 0.6, which a 101-reviewer panel gets right ~98 % of the
# time; a difference a fifth as large, only ~66 % (coordinator/tools/calibrate.py).
DEFAULT_SCALE = {"hopper": 70.0, "halfcheetah": 100.0, "walker2d": 120.0, "swimmer": 6.0}


@dataclass
class Batch:
    """What a preference source is shown about one batch of episodes.

    `returns` are the true returns: only a simulated panel and evaluation may
    read them. `episode_seeds` identify the episodes; `clips` (when the source
    asked for them) hold what a person is shown of each episode.
    """

    returns: np.ndarray
    episode_seeds: list = field(default_factory=list)
    steps: int = 0
    clips: list = None      # per episode, its recorded body poses (only for a source that asked)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))


@dataclass(frozen=True)
class Where:
    """Which comparison is being asked: agent k's comparison n of a round.

    `started` is when the round's rollouts began (time.monotonic()), so a
    person's page can tell how long the round can still wait; it never
    reaches the learning.
    """

    agent: int
    round: int
    comparison: int
    started: float = 0.0


class PreferenceSource(abc.ABC):
    """Answers comparisons; counts them in `comparisons` and `reviewer_votes`."""

    comparisons = 0
    reviewer_votes = 0
    is_person = False       # a person's answers (live or replayed): only a "human" run takes them
    # A source that blocks waiting for an answer from outside (a person) calls
    # idle() every idle_every seconds meanwhile; a transport that must keep its
    # link alive sets them (edge/agent/line_pump.py). The others never wait.
    idle = None
    idle_every = 1.0

    @abc.abstractmethod
    def compare(self, candidate: Batch, baseline: Batch, rng: np.random.Generator, where: Where = None) -> int:
        """+1 if the candidate batch is preferred, -1 if the baseline is, 0 if the source cannot tell."""

    def clip_recorder(self, task):
        """What records the episodes this source shows (None: it shows none)."""
        return None


def link_probability(link: str, x: float, scale: float) -> float:
    """sigma(x): the chance one reviewer prefers a batch that is x better."""
    if link == "linear":
        return min(1.0, max(0.0, 0.5 + x / (2.0 * scale)))
    if link == "logistic":
        z = x / scale
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    if link == "probit":
        return 0.5 * (1.0 + math.erf(x / (scale * math.sqrt(2.0))))
    raise ValueError(f"unknown link {link!r}; choose one of {', '.join(LINKS)}")


class SimulatedPanel(PreferenceSource):
    """M independent reviewers answering by majority."""

    def __init__(self, link="linear", reviewers=DEFAULT_REVIEWERS, scale=50.0):
        if link not in LINKS:
            raise ValueError(f"unknown link {link!r}; choose one of {', '.join(LINKS)}")
        if reviewers < 1 or reviewers % 2 == 0:
            raise ValueError(f"the panel size must be odd and positive, got {reviewers}")
        if not scale > 0:
            raise ValueError(f"the link scale must be positive, got {scale}")
        self.link, self.reviewers, self.scale = link, int(reviewers), float(scale)
        self.comparisons = 0
        self.reviewer_votes = 0

    def compare(self, candidate: Batch, baseline: Batch, rng: np.random.Generator, where: Where = None) -> int:
        p = link_probability(self.link, candidate.mean_return - baseline.mean_return, self.scale)
        for_candidate = int(rng.binomial(self.reviewers, p))
        self.comparisons += 1
        self.reviewer_votes += self.reviewers
        return 1 if 2 * for_candidate > self.reviewers else -1


class CoinFlip(PreferenceSource):
    """The null control: a fair coin per comparison, blind to both batches.

    It draws from the same per-comparison generator a panel would, so a null
    run is as reproducible as any other; it asks no reviewers.
    """

    def __init__(self):
        self.comparisons = 0
        self.reviewer_votes = 0

    def compare(self, candidate: Batch, baseline: Batch, rng: np.random.Generator, where: Where = None) -> int:
        self.comparisons += 1
        return 1 if rng.integers(2) else -1


def make_preference(config) -> PreferenceSource:
    """The preference source a RunConfig names: its panel, or the coin of the null control.

    A "human" run's source is the agent's own (its page or a replay), never built from the config.
    """
    if config.preference == "human":
        raise ValueError("this run's preferences come from a person: the agent needs --human "
                         "(a page) or --replay FILE (a person's recorded answers)")
    if config.preference == "coin":
        return CoinFlip()
    if config.preference == "panel":
        return SimulatedPanel(config.panel_link, config.panel_reviewers, config.scale)
    raise ValueError(f"unknown preference source {config.preference!r}; choose one of {', '.join(PREFERENCES)}")
