"""Command-line options that make a RunConfig (shared by simulate, coordinator, experiment)."""
import json
from dataclasses import fields

from fedzo.edge.learning.config import RunConfig


def add_run_arguments(parser):
    """One option per RunConfig field (e.g. --agents 5), plus --config FILE."""
    parser.add_argument("--config", help="a JSON file of run settings (options given here override it)")
    defaults = RunConfig()
    for f in fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, dest=f.name, type=f.type, default=None,
                            help=f"(default {getattr(defaults, f.name)!r})")


def config_from_args(args) -> RunConfig:
    """The RunConfig from --config (if any) and the per-field options."""
    data = {}
    if getattr(args, "config", None):
        with open(args.config) as f:
            data = json.load(f)
        if not isinstance(data, dict):
            data = {"_": data}   # from_dict reports it
    for f in fields(RunConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    return RunConfig.from_dict(data)
