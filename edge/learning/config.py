"""A run's configuration: every knob of DESIGN.md §2 and §3, validated in one place.

The coordinator resolves it and sends it to every agent in the welcome
message (as JSON), so all replicas run with the same numbers. A wrong value
raises ConfigError, which names the field and what it accepts.

Every field is bounded by what the wire can carry (issue 11): K travels as a
16-bit field in Welcome, round numbers as 32-bit ones, every other count fits
32 bits, real numbers must be finite (JSON has no infinity), and the actor
path is short enough for the Welcome's config to fit its frame.
"""
import math
from dataclasses import asdict, dataclass, fields

from fedzo.edge.learning.layout import DEFAULT_HIDDEN, format_hidden, parse_hidden
from fedzo.edge.learning.perturbation import KINDS as PERTURBATION_KINDS
from fedzo.edge.learning.preference import DEFAULT_REVIEWERS, DEFAULT_SCALE, LINKS, PREFERENCES
from fedzo.edge.learning.store_format import STORE_DTYPE_NAMES
from fedzo.edge.protocol.constants import MAX_AGENTS, MAX_ROUND
from fedzo.edge.tasks.plugins import spec_kind

ALGOS = ("par-s2zpo", "fedavg-s2zpo")
COMPARISONS = ("one-sided", "symmetric")
MAX_COUNT = 2**32 - 1           # any other whole-number field: what a 32-bit wire field holds
MAX_ACTOR_PATH_BYTES = 1024     # leaves the Welcome's config (at most 8 KiB) room for the rest
# Upper bounds of the whole-number fields; those not named here are bounded by MAX_COUNT.
INT_LIMITS = {"agents": MAX_AGENTS, "blocks": MAX_AGENTS, "per_round": MAX_AGENTS, "rounds": MAX_ROUND, "seed": 2**64 - 1}


FLEET_FIELDS = ("blocks", "per_round")     # fleets' settings (edge/learning/fleet.py)

# The fields that take one of a few names, and those names (--help shows them).
FIELD_CHOICES = {"algo": ALGOS, "panel_link": LINKS, "store_dtype": STORE_DTYPE_NAMES,
                 "perturbation": PERTURBATION_KINDS, "preference": PREFERENCES, "comparison": COMPARISONS}

# Every field's meaning in one line (each run option's --help; README "Running it").
FIELD_MEANINGS = {
    "task": "the MuJoCo task the policy controls: hopper, halfcheetah, walker2d, swimmer, "
            "package.module:Class, a fedzo.tasks entry point, or robot.xml with robot.task.json beside it "
            "(docs/tasks.md)",
    "algo": "par-s2zpo: agent k perturbs block k of theta; fedavg-s2zpo: each agent the whole "
            "vector, averaged",
    "agents": "n, the number of agents (by default one block of theta each: K = n)",
    "blocks": "K, the blocks theta is split into (0: one per agent); several agents per block vote by "
              "majority (par-s2zpo only)",
    "per_round": "m, the agents asked each round, drawn from the seed stream (0: all of them; par-s2zpo only)",
    "rounds": "T, the number of rounds",
    "alpha": "step size of an update, in parameter units (rounded to whole LSBs, at least 1)",
    "mu": "size of the perturbation theta + mu v shown for comparison, in parameter units",
    "comparisons": "N, comparisons per agent per round; its vote is the sign of their sum",
    "batch": "D, episodes in each batch of a comparison",
    "local_steps": "E, local steps per round (fedavg-s2zpo only)",
    "seed": "the run's shared seed (perturbations, episodes, panel draws)",
    "eval_every": "rounds between evaluations of the true return (0: at the start and end only)",
    "eval_episodes": "episodes of each evaluation",
    "panel_link": "how the simulated panel turns a return difference into a preference probability",
    "panel_reviewers": "M, reviewers of the simulated panel per comparison (odd: a majority)",
    "panel_scale": "c, the panel's scale of return differences (0: the task's documented default)",
    "store_dtype": "storage type of the fixed-point parameters",
    "frac_bits": "fractional bits of the fixed-point store (-1: the finest with 2x headroom)",
    "actor": "path of the starting actor (.npz; empty: the packaged actor of the task)",
    "hidden": "the policy's hidden tanh layers, widths separated by commas; the actor must have them",
    "perturbation": "rademacher: +-1 signs from the shared stream (the paper); gaussian: an experiment",
    "horizon": "time limit of training episodes in env steps (evaluation always uses the task's 1000)",
    "preference": "who answers a comparison: the simulated panel, a fair coin (the null control), or a "
                  "person at each agent (its page, or a replay of recorded answers)",
    "comparison": "one-sided: theta vs theta + mu v (the paper); symmetric: theta - mu v vs theta + mu v",
}


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


@dataclass
class RunConfig:
    """All the numbers a run needs. Step sizes are in real parameter units."""

    task: str = "hopper"
    algo: str = "par-s2zpo"
    agents: int = 5                 # n (= K unless `blocks` says otherwise)
    rounds: int = 40                # T
    alpha: float = 0.002            # step size, real units (converted to LSBs)
    mu: float = 0.01                # perturbation size, real units
    comparisons: int = 1            # N per agent per round (odd: no ties)
    batch: int = 2                  # D episodes per batch
    local_steps: int = 1            # E (FedAvg-S2ZPO only)
    seed: int = 0                   # the run's 64-bit shared seed
    eval_every: int = 5             # rounds between evaluations (0: start and end only)
    eval_episodes: int = 10
    panel_link: str = "linear"
    panel_reviewers: int = DEFAULT_REVIEWERS
    panel_scale: float = 0.0        # 0: the task's documented default
    store_dtype: str = "int16"
    frac_bits: int = -1             # -1: the finest scale with 2x headroom
    actor: str = ""                 # path of the starting actor; "": the packaged one
    hidden: str = format_hidden(DEFAULT_HIDDEN)   # the policy's hidden widths, "64,64"; d follows
    perturbation: str = "rademacher"  # "gaussian": an experiment option outside the kernel
    horizon: int = 1000             # training episodes' time limit in env steps (the tasks' own is 1000)
    preference: str = "panel"       # who answers: the simulated panel, "coin" (the null control) or "human"
    comparison: str = "one-sided"   # "one-sided": theta vs theta + mu v (the paper); "symmetric": theta - mu v vs theta + mu v
    blocks: int = 0                 # K; 0: one block per agent (K = n)
    per_round: int = 0              # m agents asked per round; 0: all n

    def __post_init__(self):
        self.validate()

    def validate(self) -> "RunConfig":
        """Check every field; raise ConfigError naming the first bad one."""
        for f in fields(self):
            value = getattr(self, f.name)
            accepted = (int, float) if f.type is float else f.type   # an int is a fine float
            if isinstance(value, bool) or not isinstance(value, accepted):
                raise ConfigError(f"{f.name} must be a {f.type.__name__}, got {value!r}")
            if f.type is float and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value!r}")
            if f.type is int and value > INT_LIMITS.get(f.name, MAX_COUNT):
                raise ConfigError(f"{f.name} must be at most {INT_LIMITS.get(f.name, MAX_COUNT)} "
                                  f"(what the wire carries), got {value}")
        if len(self.actor.encode("utf-8", errors="replace")) > MAX_ACTOR_PATH_BYTES:
            raise ConfigError(f"actor must be a path of at most {MAX_ACTOR_PATH_BYTES} bytes, "
                              f"got {len(self.actor.encode('utf-8', errors='replace'))}")
        try:
            parse_hidden(self.hidden)
        except ValueError as exc:
            raise ConfigError(f"hidden {exc}") from None
        try:
            spec_kind(self.task)
        except ValueError as exc:
            raise ConfigError(f"task {exc}") from None
        for name, choices in FIELD_CHOICES.items():
            _choice(name, getattr(self, name), choices)
        _at_least("agents", self.agents, 1)
        _at_least("rounds", self.rounds, 1)
        _at_least("comparisons", self.comparisons, 1)
        _at_least("batch", self.batch, 1)
        _at_least("local_steps", self.local_steps, 1)
        _at_least("eval_every", self.eval_every, 0)
        _at_least("eval_episodes", self.eval_episodes, 1)
        _at_least("panel_reviewers", self.panel_reviewers, 1)
        _at_least("horizon", self.horizon, 1)
        if self.horizon > 1000:
            raise ConfigError(f"horizon must be at most the tasks' 1000-step limit, got {self.horizon}")
        self._check_fleet()
        if self.panel_reviewers % 2 == 0:
            raise ConfigError(f"panel_reviewers must be odd (majority vote), got {self.panel_reviewers}")
        for name in ("alpha", "mu"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.panel_scale < 0:
            raise ConfigError(f"panel_scale must be >= 0 (0 = task default), got {self.panel_scale}")
        if not 0 <= self.seed < 2**64:
            raise ConfigError(f"seed must be in [0, 2**64), got {self.seed}")
        if self.frac_bits < -1 or self.frac_bits >= (16 if self.store_dtype == "int16" else 32):
            raise ConfigError(f"frac_bits must be -1 (auto) or fit the {self.store_dtype} store, got {self.frac_bits}")
        return self

    def _check_fleet(self) -> None:
        """blocks and per_round: K <= n, m <= n, and only where blocks are voted on."""
        for name in ("blocks", "per_round"):
            value = getattr(self, name)
            if not 0 <= value <= self.agents:
                raise ConfigError(f"{name} must be 0 or between 1 and agents ({self.agents}), got {value}")
        if self.algo != "par-s2zpo" and (self.blocks not in (0, self.agents) or self.per_round not in (0, self.agents)):
            raise ConfigError(f"blocks and per_round apply to par-s2zpo only (each {self.algo} agent "
                              f"perturbs the whole vector)")

    @property
    def block_count(self) -> int:
        """K, the number of blocks theta is split into."""
        return self.blocks or self.agents

    @property
    def asked_per_round(self) -> int:
        """m, the agents asked to roll out and vote in each round."""
        return self.per_round or self.agents

    @property
    def scale(self) -> float:
        """The panel's link scale c: panel_scale, or the task's default for 1000-step
        episodes scaled to the run's horizon (returns shrink with shorter episodes). A user's
        own task has no documented scale: ConfigError unless panel_scale gives one."""
        if self.panel_scale:
            return self.panel_scale
        if self.task not in DEFAULT_SCALE:
            raise ConfigError(f"panel_scale must be given for task {self.task}: only the built-in tasks have a "
                              f"documented one (fedzo calibrate --task {self.task} --actor A.npz measures it)")
        return DEFAULT_SCALE[self.task] * self.horizon / 1000

    @property
    def hidden_sizes(self) -> tuple:
        """`hidden` as a tuple of widths, (64, 64)."""
        return parse_hidden(self.hidden)

    @property
    def episodes_per_round(self) -> int:
        """Trajectories spent per round by the asked agents: m x N x 2D (x E for FedAvg)."""
        steps = self.local_steps if self.algo == "fedavg-s2zpo" else 1
        return self.asked_per_round * self.comparisons * 2 * self.batch * steps

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        """Build from a dict; unknown keys are an error (a typo must not pass silently)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a run config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)


def _choice(name, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _at_least(name, value, low):
    if value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")


def welcome_config(config: RunConfig, obs_mean, obs_std, dtype: str, frac_bits: int,
                   model_hash: bytes | None = None) -> dict:
    """What an agent needs besides theta: the run config, the frozen observation
    normalisation, the store's format and the hash of the coordinator's compiled task
    model (sent in Welcome; the agent refuses a run whose model differs from its own)."""
    run = config.to_dict()
    for name in FLEET_FIELDS:
        if run[name] == 0:
            # Left out at their defaults: a run that is not a fleet sends the Welcome it sent
            # before fleets existed (same bytes; agents of that version can still join it).
            del run[name]
    out = {"run": run, "obs_mean": [float(x) for x in obs_mean],
           "obs_std": [float(x) for x in obs_std], "store": {"dtype": dtype, "frac_bits": int(frac_bits)}}
    if model_hash is not None:
        out["model"] = model_hash.hex()
    return out


def parse_welcome_config(data: dict) -> tuple:
    """(RunConfig, obs_mean, obs_std, dtype, frac_bits) from `welcome_config`'s dict."""
    try:
        config = RunConfig.from_dict(data["run"])
        store = data["store"]
        return config, list(data["obs_mean"]), list(data["obs_std"]), store["dtype"], int(store["frac_bits"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"welcome config is missing {exc}") from exc


def welcome_model_hash(data: dict) -> str | None:
    """The coordinator's compiled-model hash (hex) from `welcome_config`'s dict; None from
    a coordinator that sends none."""
    value = data.get("model") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None
