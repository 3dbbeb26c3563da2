"""`fedzo agent --connect HOST:PORT --key-file F`: take part in a run as one agent."""
import sys

from edge.agent_runtime import AgentRefused, AgentRuntime
from edge.keyfile import read_key_file
from edge.protocol import ASSIGN_AGENT_ID
from edge.tcp_agent import AgentGaveUp, run_agent_tcp


def add_arguments(parser):
    parser.add_argument("--connect", required=True, metavar="HOST:PORT", help="the coordinator's address")
    parser.add_argument("--key-file", required=True, help="the run key (the coordinator writes run.key)")
    parser.add_argument("--id", type=int, default=None, help="agent id to (re)join as (default: assigned)")
    parser.add_argument("--memory-budget", type=float, default=0,
                        help="MB this agent may use; it refuses to start if it needs more")
    parser.add_argument("--reconnect-seconds", type=float, default=60.0,
                        help="how long to keep trying when the coordinator cannot be reached")


def run(args) -> int:
    try:
        key = read_key_file(args.key_file)
    except (OSError, ValueError) as exc:
        print(f"fedzo agent: {exc}", file=sys.stderr)
        return 2
    agent_id = ASSIGN_AGENT_ID if args.id is None else args.id
    if not 0 <= agent_id <= ASSIGN_AGENT_ID:
        print(f"fedzo agent: --id must be a non-negative agent id, got {args.id}", file=sys.stderr)
        return 2
    runtime = AgentRuntime(agent_id, int(args.memory_budget * 2**20), log=_log)
    try:
        run_agent_tcp(args.connect, key, runtime, reconnect_seconds=args.reconnect_seconds, log=_log)
    except AgentRefused as exc:
        print(f"fedzo agent: refusing to start: {exc}", file=sys.stderr)
        return 3
    except (AgentGaveUp, ValueError) as exc:
        print(f"fedzo agent: {exc}", file=sys.stderr)
        return 2
    report = runtime.report()
    _log(f"agent {runtime.agent_id}: done; {report.episodes} episodes, peak RSS "
         f"{report.peak_rss / 2**20:.1f} MiB (floor {report.floor_rss / 2**20:.1f} MiB, "
         f"learning state {report.learning_state} B)")
    return 0


def _log(text):
    print(text, flush=True)
