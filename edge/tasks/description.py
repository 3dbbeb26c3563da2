"""The small description that makes an MJCF file a task: `robot.task.json` beside `robot.xml`.

    {
      "name": "pendulum",                 what actor files record (default: the XML file's stem)
      "frame_skip": 2,                    physics steps per task step (default 1)
      "max_episode_steps": 500,           the task's time limit (default 1000)
      "observation": ["qpos", "qvel"],    in order: "qpos", "qvel" or a sensor's name
      "reward": [                         summed every step
        {"sensor": "tip_height", "weight": 1.0},
        {"sensor": "tip_to_target", "use": "norm", "weight": -1.0},
        {"control": "sum_of_squares", "weight": -0.001},
        {"alive": true, "weight": 1.0}
      ],
      "terminate": [                      the episode ends when any sensor value leaves its range
        {"sensor": "pole_angle", "outside": [-0.5, 0.5]}
      ],
      "reset_noise": {"qpos": 0.01, "qvel": 0.01}
    }

A sensor term reads the model's named MJCF sensor after the step; `use` turns
its values into one number: "value" (a sensor of one value; the default),
"cos" (of that value), "square" or "abs" (summed over its values), "norm"
(Euclidean). "alive" pays its weight on every step that does not end the
episode (`fedzo pretrain` trains on this reward as it is). Reset noise is
uniform in +-the given size, drawn for every qpos, then every qvel.

Every field is checked when the file is read; a wrong one is a TaskError
naming the file and the field. Sensor names are checked against the model
when the task is built (mjcf.py).
"""
import math
import re
from dataclasses import dataclass
from pathlib import Path

from fedzo.edge.learning.json_file import load_json_file

from .interface import TaskError

USES = ("value", "cos", "square", "abs", "norm")
MAX_DESCRIPTION_BYTES = 1 << 16
MAX_STEPS = 10**6
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_FIELDS = {"name", "frame_skip", "max_episode_steps", "observation", "reward", "terminate", "reset_noise"}


@dataclass(frozen=True)
class SensorUse:
    """One number from a named sensor: its value(s) turned into one by `use`."""

    sensor: str
    use: str = "value"


@dataclass(frozen=True)
class Description:
    """A task's rules beside its MJCF model (see the module docstring)."""

    name: str
    frame_skip: int = 1
    max_episode_steps: int = 1000
    observation: tuple = ("qpos", "qvel")
    sensor_terms: tuple = ()          # (SensorUse, weight)
    control_weight: float = 0.0       # times sum(action^2)
    alive_weight: float = 0.0
    terminate: tuple = ()             # (SensorUse, low, high)
    noise_qpos: float = 0.0
    noise_qvel: float = 0.0

    @property
    def sensors(self) -> set:
        """Every sensor the rules read."""
        return ({u.sensor for u, _ in self.sensor_terms} | {u.sensor for u, _, _ in self.terminate}
                | {o for o in self.observation if o not in ("qpos", "qvel")})


def description_path(xml_path) -> Path:
    """Where the description of `robot.xml` lives: `robot.task.json` beside it."""
    xml_path = Path(xml_path)
    return xml_path.with_name(xml_path.stem + ".task.json")


def read_description(xml_path) -> Description:
    """The description beside `xml_path`; TaskError naming the file (and the field) if it is wrong."""
    path = description_path(xml_path)
    if not path.is_file():
        raise TaskError(f"{xml_path}: no task description {path} beside it (docs/tasks.md says what it holds)")
    try:
        data = load_json_file(path, MAX_DESCRIPTION_BYTES)
    except (OSError, ValueError) as exc:
        raise TaskError(f"{path}: {' '.join(str(exc).split())}") from None
    return parse_description(data, path, default_name=Path(xml_path).stem)


def parse_description(data, path, default_name: str) -> Description:
    """A Description from the file's JSON object (path names the file in errors)."""
    def bad(where, what):
        return TaskError(f"{path}: {where} {what}")

    if not isinstance(data, dict):
        raise bad("the file", f"must hold a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise bad(unknown[0], f"is not a field of a task description (known: {', '.join(sorted(_FIELDS))})")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad("name", f"must be 1 to 64 letters, digits, '_', '.' or '-', got {name!r}")
    frame_skip = _whole(data.get("frame_skip", 1), "frame_skip", bad)
    limit = _whole(data.get("max_episode_steps", 1000), "max_episode_steps", bad)
    observation = data.get("observation", ["qpos", "qvel"])
    if (not isinstance(observation, list) or not observation
            or not all(isinstance(o, str) and o for o in observation)):
        raise bad("observation", f"must be a non-empty list of \"qpos\", \"qvel\" or sensor names, got {observation!r}")
    sensor_terms, control, alive = [], 0.0, 0.0
    terms = data.get("reward", [])
    if not isinstance(terms, list) or not terms:
        raise bad("reward", "must be a non-empty list of terms")
    for i, term in enumerate(terms):
        where = f"reward[{i}]"
        if not isinstance(term, dict):
            raise bad(where, f"must be an object, got {term!r}")
        kinds = [k for k in ("sensor", "control", "alive") if k in term]
        if len(kinds) != 1:
            raise bad(where, "must have exactly one of \"sensor\", \"control\", \"alive\"")
        allowed = {"weight", kinds[0]} | ({"use"} if kinds[0] == "sensor" else set())
        if set(term) - allowed:
            raise bad(where, f"has an unknown key {sorted(set(term) - allowed)[0]!r}")
        weight = _number(term.get("weight"), f"{where}.weight", bad)
        if kinds[0] == "sensor":
            sensor_terms.append((_sensor_use(term, where, bad), weight))
        elif kinds[0] == "control":
            if term["control"] != "sum_of_squares":
                raise bad(f"{where}.control", f"must be \"sum_of_squares\", got {term['control']!r}")
            control += weight
        else:
            if term["alive"] is not True:
                raise bad(f"{where}.alive", f"must be true, got {term['alive']!r}")
            alive += weight
    terminate = []
    rules = data.get("terminate", [])
    if not isinstance(rules, list):
        raise bad("terminate", "must be a list of rules")
    for i, rule in enumerate(rules):
        where = f"terminate[{i}]"
        if not isinstance(rule, dict) or set(rule) - {"sensor", "use", "outside"} or "outside" not in rule:
            raise bad(where, "must be an object with \"sensor\", \"outside\": [low, high] and, optionally, \"use\"")
        bounds = rule["outside"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise bad(f"{where}.outside", f"must be [low, high], got {bounds!r}")
        low, high = (_number(b, f"{where}.outside", bad) for b in bounds)
        if not low < high:
            raise bad(f"{where}.outside", f"must have low < high, got {bounds!r}")
        terminate.append((_sensor_use(rule, where, bad), low, high))
    noise = data.get("reset_noise", {})
    if not isinstance(noise, dict) or set(noise) - {"qpos", "qvel"}:
        raise bad("reset_noise", f"must be an object with \"qpos\" and/or \"qvel\", got {noise!r}")
    noise_qpos, noise_qvel = (_number(noise.get(k, 0.0), f"reset_noise.{k}", bad) for k in ("qpos", "qvel"))
    if noise_qpos < 0 or noise_qvel < 0:
        raise bad("reset_noise", "sizes must be >= 0")
    return Description(name, frame_skip, limit, tuple(observation), tuple(sensor_terms), control, alive,
                       tuple(terminate), noise_qpos, noise_qvel)


def _sensor_use(entry, where, bad) -> SensorUse:
    sensor, use = entry.get("sensor"), entry.get("use", "value")
    if not isinstance(sensor, str) or not sensor:
        raise bad(f"{where}.sensor", f"must be a sensor's name, got {sensor!r}")
    if use not in USES:
        raise bad(f"{where}.use", f"must be one of {', '.join(USES)}, got {use!r}")
    return SensorUse(sensor, use)


def _whole(value, where, bad) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STEPS:
        raise bad(where, f"must be a whole number from 1 to {MAX_STEPS}, got {value!r}")
    return value


def _number(value, where, bad) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad(where, f"must be a finite number, got {value!r}")
    return float(value)
