"""`fedzo agent (--connect HOST:PORT | --serial PORT) --key FILE`: take part in a run as one agent.

FILE is the run key (the coordinator's run.key) or this agent's own key file
(`fedzo coordinator keys`), which names the agent id it is for: the agent
then joins as that id, and an --id that differs is refused (exit code 2).
"""
import sys

from fedzo.edge import kernel
from fedzo.edge.agent.exit_codes import EXIT_BAD_INPUT, EXIT_GAVE_UP, EXIT_OUT_OF_MEMORY, EXIT_REFUSED
from fedzo.edge.agent.out_of_memory import describe, is_out_of_memory
from fedzo.edge.agent.reconnect import DEFAULT_RECONNECT_SECONDS, AgentGaveUp
from fedzo.edge.agent.runtime import AgentRefused, AgentRuntime
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.human import DEFAULT_ANSWERS, HUMAN_ROUND_TIMEOUT, add_person_arguments
from fedzo.edge.policy.workers import check_workers, usable_cores
from fedzo.edge.links.serial_link import (
    DEFAULT_BAUD,
    DEFAULT_FRAGMENT_BYTES,
    DEFAULT_LINK_TIMEOUT,
)
from fedzo.edge.protocol import ASSIGN_AGENT_ID
from fedzo.edge.protocol.agentkeys import AgentKey, read_key


def add_arguments(parser):
    link = parser.add_mutually_exclusive_group(required=True)
    link.add_argument("--connect", metavar="HOST:PORT", help="the coordinator's TCP address")
    link.add_argument("--serial", metavar="PORT",
                      help="a serial port: a device (/dev/ttyUSB0, /dev/ttyAMA0) or a pyserial URL "
                           "(socket://HOST:PORT, rfc2217://HOST:PORT)")
    parser.add_argument("--baud", type=int, default=None,
                        help=f"serial baud rate, 8N1 (default {DEFAULT_BAUD}; with --serial only)")
    parser.add_argument("--key-file", "--key", dest="key_file", required=True, metavar="FILE",
                        help="the run key (the coordinator writes run.key), or this agent's own key file "
                             "(fedzo coordinator keys), which says the agent id it is for")
    parser.add_argument("--id", type=int, default=None,
                        help="agent id to (re)join as (default: assigned, or the id of --key's agent key)")
    parser.add_argument("--memory-budget", type=float, default=0,
                        help="MB this agent may use; before it takes a slot it checks the run's d and "
                             "task against this and exits with code 3 if it needs more (default 0: no limit)")
    parser.add_argument("--reconnect-seconds", type=float, default=DEFAULT_RECONNECT_SECONDS,
                        help="how long to keep trying without an answer from the coordinator before "
                             f"giving up with exit code 5 (default {DEFAULT_RECONNECT_SECONDS:.0f})")
    parser.add_argument("--link-timeout", type=float, default=DEFAULT_LINK_TIMEOUT,
                        help="serial: seconds without an acknowledgement before the link counts as lost "
                             f"and the agent joins again (default {DEFAULT_LINK_TIMEOUT:.0f})")
    parser.add_argument("--fragment", type=int, default=DEFAULT_FRAGMENT_BYTES,
                        help=f"serial: bytes of a frame per packet (default {DEFAULT_FRAGMENT_BYTES}; "
                             "smaller survives a noisier line)")
    person = add_person_arguments(parser, "a person answers (a run with --preference human)",
                                  "serve the comparison page on HOST:PORT")
    person.add_argument("--answers", default=DEFAULT_ANSWERS, metavar="FILE",
                        help=f"where --human appends the person's answers (default {DEFAULT_ANSWERS})")
    person.add_argument("--round-timeout", type=float, default=HUMAN_ROUND_TIMEOUT,
                        help="the coordinator's round timeout, which the page counts down "
                             f"(default {HUMAN_ROUND_TIMEOUT:.0f}, a human run's)")
    parser.add_argument("--task", metavar="SPEC",
                        help="a user's task this agent may build: package.module:Class or path/to/robot.xml "
                             "(its own copy; a run with such a task is refused without it, docs/tasks.md)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes that run a round's episodes (default: the cores this agent may "
                             f"use, {usable_cores()} here); each extra one costs a few MB; a run a person "
                             "answers uses one")
    parser.add_argument("--stats-out", metavar="FILE",
                        help="write this agent's link figures (bytes, retransmissions) as JSON when it ends")


def run(args) -> int:
    fallback = kernel.fallback_warning()
    if fallback:   # the fallback is several times slower: say so first thing
        print(f"fedzo agent: warning: {fallback}", file=sys.stderr, flush=True)
    try:
        workers = usable_cores() if args.workers is None else check_workers(args.workers)
    except ValueError as exc:
        print(f"fedzo agent: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        key = read_key(args.key_file)
    except (OSError, ValueError) as exc:
        print(f"fedzo agent: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    agent_id = ASSIGN_AGENT_ID if args.id is None else args.id
    if isinstance(key, AgentKey):
        if args.id is not None and args.id != key.agent_id:
            print(f"fedzo agent: --id {args.id} does not match the key file {args.key_file}, which is "
                  f"agent {key.agent_id}'s key; leave --id out or give the key file of agent {args.id}",
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        agent_id = key.agent_id
    if not 0 <= agent_id <= ASSIGN_AGENT_ID:
        print(f"fedzo agent: --id must be a non-negative agent id, got {args.id}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.baud is not None and args.serial is None:
        print("fedzo agent: --baud applies to --serial only", file=sys.stderr)
        return EXIT_BAD_INPUT
    person = None
    if args.human or args.replay:
        from fedzo.edge.human.person import start_person
        try:
            person = start_person(1, page=args.human, answers=args.answers, replay=args.replay,
                                  round_timeout=args.round_timeout, log=_log)
        except (OSError, ValueError) as exc:
            print(f"fedzo agent: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    runtime = AgentRuntime(agent_id, int(args.memory_budget * 2**20), log=_log,
                           preference=person.sources[0] if person else None, task=args.task,
                           workers=workers)
    try:
        if args.serial is not None:
            from fedzo.edge.agent.serial import run_agent_serial
            stats = run_agent_serial(args.serial, key, runtime, baud=args.baud or DEFAULT_BAUD,
                                     fragment=args.fragment, link_timeout=args.link_timeout,
                                     reconnect_seconds=args.reconnect_seconds, log=_log)
            if args.stats_out:
                stats.write(args.stats_out)
        else:
            counters = run_agent_tcp(args.connect, key, runtime, reconnect_seconds=args.reconnect_seconds,
                                     log=_log)
            if args.stats_out:
                _write_json(args.stats_out, {"transport": "tcp", "counters": counters.to_dict()})
    except AgentRefused as exc:
        print(f"fedzo agent: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except AgentGaveUp as exc:
        print(f"fedzo agent: {exc}", file=sys.stderr)
        return EXIT_GAVE_UP
    except Exception as exc:   # noqa: BLE001 - sorted below; anything else is re-raised
        if is_out_of_memory(exc):
            # Under a RAM cap (a small board, or firmware_sim's limit) say so plainly.
            print(f"fedzo agent: out of memory ({describe(exc)}); this board has too little RAM for the run",
                  file=sys.stderr)
            return EXIT_OUT_OF_MEMORY
        if isinstance(exc, (ValueError, OSError)):
            print(f"fedzo agent: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise
    finally:
        if person is not None:
            person.stop()
    report = runtime.report()
    _log(f"agent {runtime.agent_id}: done; {report.episodes} episodes, peak RSS "
         f"{report.peak_rss / 2**20:.1f} MiB (floor {report.floor_rss / 2**20:.1f} MiB, "
         f"learning state {report.learning_state} B)")
    return 0


def _write_json(path, data):
    import json
    with open(path, "w") as f:
        json.dump(data, f)


def _log(text):
    print(text, flush=True)
