"""`fedzo simulate`: a coordinator and K agents on one machine (the main job)."""
import os
import sys
import time
from pathlib import Path

from fedzo.coordinator.commands.run_options import add_run_arguments, config_from_args
from fedzo.edge.human import HUMAN_ROUND_TIMEOUT, add_person_arguments
from fedzo.edge.learning.config import ConfigError

LINKS = ("inproc", "tcp", "serial", "ray")


def add_arguments(parser):
    add_run_arguments(parser)
    parser.add_argument("--link", choices=LINKS, default=None,
                        help="tcp: agent processes on loopback TCP (default); "
                             "inproc: agents in this process, no network; "
                             "serial: simulated boards on paced pseudo-terminal serial lines "
                             "(Ethernet boards use loopback TCP); "
                             "ray: agents in Ray actors (pip install 'fedzo[ray]'; docs/cluster.md)")
    parser.add_argument("--out", default=None, help="run folder (default: runs/<algo>-<task>-<time>); a folder "
                        "that already holds a run is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the run in --out (its files go; other files stay)")
    parser.add_argument("--round-timeout", type=float, default=None,
                        help="seconds a round waits for missing votes (they count 0; default 120, a human "
                             f"run's {HUMAN_ROUND_TIMEOUT:.0f}); an agent silent for a whole round is absent: "
                             "no round waits for it until it speaks")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes that run each agent's episodes (default: this machine's usable "
                             "cores divided among the agents, at least 1); a human run uses one")
    parser.add_argument("--quiet", action="store_true", help="no per-round lines")
    parser.add_argument("--behaviour", default="", metavar="SPEC",
                        help="in-process agents that misbehave, e.g. dishonest=5,lie=flip,dropout=0.2: the first "
                             "5 agent ids lie (flip: the opposite of their vote; random: a random sign) and each "
                             "asked agent sleeps through a round with probability 0.2 (docs/fleets.md)")
    parser.add_argument("--with-null", action="store_true",
                        help="afterwards, run the same config with coin-flip votes (the null control, "
                             "in-process, in OUT/null-control) and print its drift beside the run's gain")
    add_person_arguments(parser, "a person answers (--preference human; the agents run in this process)",
                         "one page queues every agent's comparisons; the answers go to OUT/answers.jsonl")
    ray = parser.add_argument_group("Ray (--link ray)")
    ray.add_argument("--ray-address", default=None, metavar="ADDRESS",
                     help="the Ray cluster to use (default: a local Ray started now with this machine's CPUs)")
    ray.add_argument("--actors", type=int, default=None,
                     help="actors holding the agents, one CPU each (default: the cluster's free CPUs)")
    boards = parser.add_argument_group("simulated boards (--link serial, or --link tcp with --board)")
    boards.add_argument("--board", default=None,
                        help="board profile of every agent (`fedzo boards` lists them; default for "
                             "--link serial: pi-zero-2w)")
    boards.add_argument("--cpu-factor", type=float, default=None,
                        help="override the board's CPU slow-down (1 = as fast as this machine)")
    boards.add_argument("--ram-mb", type=int, default=None, help="override the board's RAM (MB)")
    boards.add_argument("--baud", type=int, default=None, help="override the board's serial baud rate")
    boards.add_argument("--faults", default="",
                        help="fault injection on every serial line, e.g. drop=0.005,flip=0.005,seed=1 "
                             "(also burst, burst_len, delay, delay_ms, disconnect, disconnect_s)")
    boards.add_argument("--fragment", type=int, default=None,
                        help="serial: frame bytes per packet (default 128; smaller survives more noise)")
    boards.add_argument("--link-timeout", type=float, default=None,
                        help="serial: seconds without an acknowledgement before a link counts as lost "
                             "(default 30)")


def default_out(config) -> Path:
    from fedzo.edge.tasks.plugins import file_label
    return Path("runs") / f"{config.algo}-{file_label(config.task)}-{time.strftime('%Y%m%d-%H%M%S')}"


def _board_options(args):
    """(profile, faults) for a board simulation, or (None, None); ValueError on bad input."""
    from fedzo.firmware_sim.faults import FaultSpec
    from fedzo.firmware_sim.profiles import DEFAULT_PROFILE, get_profile
    board_only = [name for name in ("cpu_factor", "ram_mb", "baud", "fragment", "link_timeout")
                  if getattr(args, name) is not None] + (["faults"] if args.faults else [])
    if args.link in ("inproc", "ray") or (args.link == "tcp" and args.board is None):
        if args.board is not None or board_only:
            raise ValueError(f"--board and board options need --link serial (or --link tcp --board NAME); "
                             f"got --link {args.link}")
        return None, None
    profile = get_profile(args.board or DEFAULT_PROFILE)
    profile = profile.with_overrides(ram_mb=args.ram_mb, baud=args.baud, cpu_factor=args.cpu_factor)
    if args.link == "tcp" and profile.serial:
        # The board's RAM and CPU, over TCP instead of its serial line.
        from dataclasses import replace
        profile = replace(profile, link="ethernet", baud=0)
    faults = FaultSpec.parse(args.faults)
    if args.fragment is not None:
        from fedzo.edge.links.serial_link import check_fragment
        check_fragment(args.fragment)
    if args.link_timeout is not None and not args.link_timeout > 0:
        raise ValueError(f"--link-timeout must be positive, got {args.link_timeout}")
    return profile, faults


def _behaviour_option(args, config):
    """--behaviour, checked: misbehaving agents are simulated in-process only."""
    from fedzo.firmware_sim.behaviour import Behaviour
    behaviour = Behaviour.parse(args.behaviour)
    if behaviour.active and args.link not in (None, "inproc"):
        raise ValueError(f"--behaviour simulates agents in this process (--link inproc); got --link {args.link}")
    if behaviour.active:
        args.link = "inproc"
    if behaviour.dishonest > config.agents:
        raise ValueError(f"--behaviour dishonest={behaviour.dishonest} is more than the run's "
                         f"{config.agents} agents")
    return behaviour


def _ray_options(args):
    """--link ray needs Ray (RayMissing says how to install it); its options need --link ray."""
    if args.link != "ray":
        if args.ray_address is not None or args.actors is not None:
            raise ValueError(f"--ray-address and --actors need --link ray; got --link {args.link}")
        return
    if args.actors is not None and args.actors < 1:
        raise ValueError(f"--actors must be at least 1, got {args.actors}")
    from fedzo.coordinator.cluster.connect import RayMissing, require_ray
    try:
        require_ray()
    except RayMissing as exc:
        raise ValueError(f"--link ray: {exc}") from None


def _workers(args, config) -> int:
    """Rollout processes per agent: --workers, or the usable cores shared among the K agents
    (the agents run at the same time, so more would only queue for the same cores)."""
    from fedzo.edge.policy.workers import check_workers, usable_cores
    if args.workers is not None:
        return check_workers(args.workers)
    return max(1, usable_cores() // config.agents)


def _person_options(args, config):
    """A run a person answers (--human, --replay) is a human run with its agents in this process."""
    person = getattr(args, "human", None) is not None or getattr(args, "replay", None) is not None
    if person and args.link not in (None, "inproc"):
        raise ValueError(f"--human and --replay run the agents in this process (one page for all); "
                         f"--link {args.link} does not go with them")
    if person and getattr(args, "preference", None) not in (None, "human"):
        raise ValueError(f"--human and --replay answer a human run, not --preference {args.preference}")
    if config.preference == "human" and not person:
        raise ValueError("--preference human needs --human (a page) or --replay FILE")
    args.link = args.link or ("inproc" if person else "tcp")
    if args.round_timeout is None:
        args.round_timeout = HUMAN_ROUND_TIMEOUT if person else 120.0
    if person:
        from dataclasses import replace
        config = replace(config, preference="human")
    return config


def run(args) -> int:
    try:
        config = config_from_args(args)
        args.behaviour = _behaviour_option(args, config)     # first: it implies --link inproc
        config = _person_options(args, config)
        if args.behaviour.active and config.preference == "human":
            raise ValueError("--behaviour simulates misbehaving agents; a person's answers are their own")
        profile, faults = _board_options(args)
        _ray_options(args)
        args.workers = _workers(args, config)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"fedzo simulate: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else default_out(config)
    log = (lambda *a, **k: None) if args.quiet else print
    from fedzo.coordinator.run.claim import new_run_folder
    from fedzo.coordinator.run.folder import FolderWriteError
    from fedzo.coordinator.run.lifecycle import Run
    from fedzo.coordinator.run.summary_text import print_summary
    run_key = os.urandom(32)
    person = None
    try:
        with new_run_folder(out, args.overwrite, command="fedzo simulate"):
            the_run = Run(config, out, round_timeout=args.round_timeout, log=log)
            if config.preference == "human":
                # Here, so that a page address in use or a bad answers file leaves no run folder.
                person = _start_person(args, config, out)
    except (OSError, ValueError) as exc:
        print(f"fedzo simulate: {exc}", file=sys.stderr)
        return 2
    try:
        summary = _simulate(args, the_run, run_key, profile, faults, log, person)
    except FolderWriteError as exc:
        print(f"fedzo simulate: {exc}; the run folder keeps its last checkpoint", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"fedzo simulate: interrupted; {out} keeps the rounds done so far (a coordinator's run "
              f"continues with `fedzo coordinator --resume`; a simulation starts again with --overwrite)",
              file=sys.stderr)
        return 130
    finally:
        if person is not None:
            person.stop()
    if summary is None:
        return 1
    print_summary(summary, out)
    if args.with_null:
        run_null_control(config, out / "null-control", the_run.runtime.round)
    for error in summary.get("errors") or []:
        print(f"fedzo simulate: {error}", file=sys.stderr)
    return 1 if summary.get("errors") else 0


def _simulate(args, the_run, run_key, profile, faults, log, person=None):
    """Run the simulation over the chosen link; its summary, or None if it failed (said why)."""
    config = the_run.config
    if profile is not None:
        from fedzo.edge.links.serial_link import (
            DEFAULT_FRAGMENT_BYTES,
            DEFAULT_LINK_TIMEOUT,
        )
        from fedzo.firmware_sim.simulate import BoardsFailed, simulate_boards
        try:
            return simulate_boards(the_run, run_key, profile, faults=faults,
                                   agent_args=("--workers", args.workers),
                                   fragment=args.fragment or DEFAULT_FRAGMENT_BYTES,
                                   link_timeout=args.link_timeout or DEFAULT_LINK_TIMEOUT, log=log)
        except (BoardsFailed, ValueError) as exc:
            print(f"fedzo simulate: {exc}", file=sys.stderr)
            return None
    if args.link == "inproc":
        from fedzo.coordinator.transports.inproc import run_inproc
        from fedzo.edge.agent.runtime import AgentRuntime
        if person is not None:
            agents = [AgentRuntime(log=lambda *a: None, preference=source, task=config.task)
                      for source in person.sources]
            # One thread per agent, so every agent's comparison queues on the page at once.
            return run_inproc(the_run, agents, run_key, workers=config.agents, log=print)
        from fedzo.firmware_sim.behaviour import simulated_agents
        agents = simulated_agents(config.agents, args.behaviour, log=lambda *a: None, task=config.task,
                                  workers=args.workers)
        return run_inproc(the_run, agents, run_key, log=print)
    if args.link == "ray":
        from fedzo.coordinator.cluster.connect import RayUnavailable
        from fedzo.coordinator.cluster.ray_link import ActorsUnavailable, simulate_ray
        try:
            return simulate_ray(the_run, run_key, address=args.ray_address, actors=args.actors, log=print)
        except (RayUnavailable, ActorsUnavailable) as exc:
            print(f"fedzo simulate: {exc}", file=sys.stderr)
            return None
    from fedzo.coordinator.transports.tcp import AgentsGone, simulate_tcp
    try:
        return simulate_tcp(the_run, run_key, log=log, agent_args=("--workers", str(args.workers)))
    except AgentsGone as exc:
        print(f"fedzo simulate: {exc}", file=sys.stderr)
        return None


def _start_person(args, config, out):
    """One page for every in-process agent (or a replay of their answers); answers to OUT/answers.jsonl.

    The coordinator waits for its in-process agents' threads, so a round waits for the person.
    """
    from fedzo.edge.human.person import start_person
    return start_person(config.agents, page=args.human, answers=Path(out) / "answers.jsonl",
                        replay=args.replay, log=lambda text: print(text, flush=True))


def run_null_control(config, out, rounds) -> dict:
    """The same run with coin-flip votes, in-process; prints its drift (the null's "gain")."""
    from dataclasses import replace

    from fedzo.coordinator.run.lifecycle import Run
    from fedzo.coordinator.run.summary_text import print_returns
    from fedzo.coordinator.transports.inproc import run_inproc
    from fedzo.edge.agent.runtime import AgentRuntime
    null = replace(config, preference="coin", rounds=max(1, rounds))
    print(f"\nnull control: the same run with coin-flip votes ({null.rounds} rounds, in-process) ...",
          flush=True)
    the_run = Run(null, out, log=lambda *a: None, plots=False)
    agents = [AgentRuntime(log=lambda *a: None, task=null.task) for _ in range(null.agents)]
    summary = run_inproc(the_run, agents, os.urandom(32), log=lambda *a: None)
    print_returns(summary, label="null (coin-flip votes)")
    print("  a gain well beyond the null's drift (in units of their standard errors) is learning; "
          "one seed decides nothing (docs/PAPER.md has the seeds-paired figures)")
    return summary
