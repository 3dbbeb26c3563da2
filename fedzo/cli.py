"""The `fedzo` command line: one table of subcommands over both sides, each in its own module.

Each command module provides `add_arguments(parser)` and `run(args) -> int`.
Modules are imported only when their command runs, so `fedzo agent` on a board
never imports the coordinator's reporting code.
"""
import argparse
import importlib
import sys

# name -> (module, one-line help). The order is the order `fedzo --help` shows.
COMMANDS = {
    "info": ("fedzo.edge.commands.info", "show the version, the kernel backend and why it was chosen"),
    "bench": ("fedzo.bench", "measure speed: kernel, rollout or link"),
    "simulate": ("fedzo.coordinator.commands.simulate", "a coordinator and K agents on this machine (the main job)"),
    "coordinator": ("fedzo.coordinator.commands.coordinator", "serve a run to agents over TCP and serial ports (on the laptop)"),
    "agent": ("fedzo.edge.commands.agent", "take part in a run as one agent (on a board)"),
    "experiment": ("fedzo.coordinator.commands.experiment", "run a grid of runs at equal trajectory budgets"),
    "report": ("fedzo.coordinator.commands.report", "Markdown report with plots of an experiment's runs"),
    "calibrate": ("fedzo.coordinator.commands.calibrate", "measure return differences that set the panel scale c"),
    "pretrain": ("fedzo.coordinator.commands.pretrain", "train a starting actor with ARS on the true reward"),
    "eval": ("fedzo.coordinator.commands.eval", "true return of an actor, in float32 and quantised"),
    "export": ("fedzo.coordinator.commands.export", "write a run's trained theta as an actor file"),
    "boards": ("fedzo.firmware_sim.commands.boards", "list the simulated board profiles (RAM, link, CPU)"),
}


def build_parser(command=None) -> argparse.ArgumentParser:
    """The argument parser; only `command`'s module is imported (if given)."""
    parser = argparse.ArgumentParser(
        prog="fedzo",
        description="Federated RLHF on edge devices with Par-S2ZPO.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    """Entry point of the `fedzo` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("fedzo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and closed early
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
