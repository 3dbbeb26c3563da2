"""`fedzo simulate`: a coordinator and K agents on one machine (the main job)."""
import os
import sys
import time
from pathlib import Path

from coordinator.runconfig_args import add_run_arguments, config_from_args
from edge.config import ConfigError

LINKS = ("inproc", "tcp")


def add_arguments(parser):
    add_run_arguments(parser)
    parser.add_argument("--link", choices=LINKS, default="tcp",
                        help="tcp: agent processes on loopback TCP (default); "
                             "inproc: agents in this process, no network")
    parser.add_argument("--out", default=None, help="run folder (default: runs/<algo>-<task>-<time>)")
    parser.add_argument("--round-timeout", type=float, default=120.0, help="seconds before a round closes without a missing vote")
    parser.add_argument("--quiet", action="store_true", help="no per-round lines")


def default_out(config) -> Path:
    return Path("runs") / f"{config.algo}-{config.task}-{time.strftime('%Y%m%d-%H%M%S')}"


def run(args) -> int:
    try:
        config = config_from_args(args)
    except (ConfigError, OSError) as exc:
        print(f"fedzo simulate: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else default_out(config)
    log = (lambda *a, **k: None) if args.quiet else print
    from coordinator.report_text import print_summary
    from coordinator.run import Run
    run_key = os.urandom(32)
    try:
        the_run = Run(config, out, round_timeout=args.round_timeout, log=log)
    except (FileNotFoundError, ValueError) as exc:
        print(f"fedzo simulate: {exc}", file=sys.stderr)
        return 2
    if args.link == "inproc":
        from coordinator.inproc import run_inproc
        from edge.agent_runtime import AgentRuntime
        agents = [AgentRuntime(log=lambda *a: None) for _ in range(config.agents)]
        summary = run_inproc(the_run, agents, run_key, log=print)
    else:
        from coordinator.tcp import simulate_tcp
        summary = simulate_tcp(the_run, run_key, log=log)
    print_summary(summary, out)
    return 0
