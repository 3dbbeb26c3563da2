"""Command-line options that make a RunConfig (shared by simulate, coordinator, experiment)."""
from dataclasses import fields

from fedzo.edge.learning.config import FIELD_CHOICES, FIELD_MEANINGS, ConfigError, RunConfig
from fedzo.edge.learning.json_file import load_json_file

MAX_CONFIG_FILE_BYTES = 1 << 20     # a run config is a few hundred bytes; refuse anything huge unread


def read_config_file(path) -> dict:
    """The JSON object in a --config file; ConfigError naming the file (and the field) if it is bad."""
    try:
        data = load_json_file(path, MAX_CONFIG_FILE_BYTES)
    except (OSError, ValueError) as exc:   # not UTF-8, not JSON, too large or too deep: ValueErrors
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a run config must be a JSON object, got {type(data).__name__}")
    return data


def add_run_arguments(parser):
    """One option per RunConfig field (e.g. --agents 5), plus --config FILE."""
    parser.add_argument("--config", help="a JSON file of run settings (options given here override it)")
    for f in fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, dest=f.name, type=f.type, default=None, help=option_help(f.name),
                            metavar="{" + ",".join(FIELD_CHOICES[f.name]) + "}" if f.name in FIELD_CHOICES else None)


def option_help(name: str) -> str:
    """A run option's --help: its meaning, its default and, where it has them, its choices."""
    default = getattr(RunConfig(), name)
    choices = FIELD_CHOICES.get(name)
    text = f"{FIELD_MEANINGS[name]} (default {default!r}"
    return text + (f"; one of {', '.join(choices)})" if choices else ")")


def config_from_args(args) -> RunConfig:
    """The RunConfig from --config (if any) and the per-field options."""
    data = read_config_file(args.config) if getattr(args, "config", None) else {}
    for f in fields(RunConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    try:
        return RunConfig.from_dict(data)
    except ConfigError as exc:
        if getattr(args, "config", None):
            raise ConfigError(f"{args.config}: {exc}") from exc
        raise


def config_for_resume(args, saved: RunConfig, where) -> RunConfig:
    """A resumed run's RunConfig: the saved one (from `where`, its config.json). Settings given
    again (options or --config) must agree with it, except --rounds, which may extend the
    run; ConfigError naming the option and the file otherwise."""
    data = saved.to_dict()
    given = read_config_file(args.config) if getattr(args, "config", None) else {}
    given.update({f.name: getattr(args, f.name) for f in fields(RunConfig)
                  if getattr(args, f.name, None) is not None})
    data.update(given)
    try:
        config = RunConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"--resume: {exc}") from exc
    for f in fields(RunConfig):
        new, old = getattr(config, f.name), getattr(saved, f.name)
        flag = "--" + f.name.replace("_", "-")
        if f.name == "rounds" and new < old:
            raise ConfigError(f"{flag} {new}: the run in {where} has {old} rounds; "
                              f"a resumed run can be extended, not shortened")
        if f.name != "rounds" and new != old:
            raise ConfigError(f"{flag} {new!r} differs from the run's {old!r} ({where}); "
                              f"a resumed run keeps its settings (only --rounds may extend it)")
    return config
