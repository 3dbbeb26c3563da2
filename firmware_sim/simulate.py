"""`fedzo simulate --link serial --board NAME`: K simulated boards against a coordinator.

Each board (fedzo.firmware_sim.board) is a real `fedzo agent` process under the
profile's RAM cap and CPU slow-down. A UART board talks over its own
SerialLine (two pseudo-terminals with a pacer at the baud rate, and the
faults asked for); the coordinator serves all K lines' far ends as serial
ports in one Server. An Ethernet board talks over loopback TCP (not paced:
a Gigabit link is not what limits these runs).

The summary gets, besides the usual per-agent figures (which for serial
links include time on the wire, retransmissions and rejected frames), a
`boards` list: each board's status, exit code, peak memory sampled from
outside, the line's byte and fault counts, and the agent's own view of its
link (read from the JSON it writes with --stats-out). If every board has
died while the run still waits, the simulation stops with BoardsFailed,
naming what happened to each; so it does if a board dies before the first
round (which waits for all K).
"""
import json
from pathlib import Path

from fedzo.coordinator.run.folder import RUN_KEY, SUMMARY, agent_log_name
from fedzo.coordinator.transports.server import Server
from fedzo.edge.agent.reconnect import DEFAULT_RECONNECT_SECONDS
from fedzo.edge.links.serial_link import DEFAULT_FRAGMENT_BYTES, DEFAULT_LINK_TIMEOUT
from fedzo.edge.protocol.keyfile import write_key_file
from fedzo.firmware_sim.board import Board
from fedzo.firmware_sim.faults import FaultSpec
from fedzo.firmware_sim.line import SerialLine
from fedzo.firmware_sim.profiles import BoardProfile


class BoardsFailed(RuntimeError):
    """Every board stopped before the run could finish; the text says why for each."""


def rounds_voted(metrics: list, agents: int) -> list:
    """How many rounds each agent voted in, from the run's metrics lines.

    An agent's vote is always -1 or +1; a 0 is a missing (or discarded) vote.
    """
    counts = [0] * agents
    for record in metrics:
        for k, vote in enumerate(record["votes"][:agents]):
            counts[k] += vote != 0
    return counts


def silent_board_errors(boards: list) -> list:
    """One line per board that voted in no round: the run did not have it, whatever its status."""
    return [f"board {b['id']} voted in no round ({b['status']}: {b['message'] or 'see ' + b['log']})"
            for b in boards if b.get("rounds_voted") == 0]


def simulate_boards(run, run_key: bytes, profile: BoardProfile, *, faults: FaultSpec | None = None,
                    fragment: int = DEFAULT_FRAGMENT_BYTES, link_timeout: float = DEFAULT_LINK_TIMEOUT,
                    reconnect_seconds: float = DEFAULT_RECONNECT_SECONDS, timeout=None, log=print,
                    on_start=None, agent_args=()) -> dict:
    """Run `run` with K boards of `profile`; returns the summary (with `boards`).

    on_start(boards, lines), if given, is called once everything is running
    (tests use it to cut a cable or stop a board). agent_args go to every
    board's `fedzo agent` (e.g. --workers N).
    """
    faults = faults or FaultSpec()
    if faults.active and not profile.serial:
        raise ValueError(f"--faults needs a serial board; {profile.name} uses {profile.link_text()}")
    folder = Path(run.folder.path)
    key_file = folder / RUN_KEY
    write_key_file(key_file, run_key)
    K = run.config.agents
    lines, boards, server = [], [], None
    try:
        if profile.serial:
            lines = [SerialLine(profile.baud, faults, index=k, name=f"board-{k}") for k in range(K)]
            server = Server(run, run_key, listen=None, serial=[l.coordinator_port for l in lines],
                            baud=profile.baud, fragment=fragment, link_timeout=link_timeout, log=log)
            links = [["--serial", l.agent_port, "--baud", profile.baud, "--fragment", fragment,
                      "--link-timeout", link_timeout] for l in lines]
        else:
            server = Server(run, run_key, listen=("127.0.0.1", 0), log=log)
            host, port = server.address
            links = [["--connect", f"{host}:{port}"] for _ in range(K)]
        for line in lines:
            line.start()
        for k in range(K):
            args = links[k] + ["--key-file", key_file, "--id", k, "--task", run.config.task,
                               "--reconnect-seconds", reconnect_seconds,
                               "--stats-out", _link_stats_path(folder, k), *agent_args]
            boards.append(Board(k, profile, args, folder / agent_log_name(k)).start())
        log(f"{K} simulated {profile.name} boards ({profile.ram_mb} MB RAM, {profile.link_text()}, "
            f"CPU {profile.cpu_factor:g}x slower){'; faults ' + str(faults) if faults.active else ''}")
        if on_start is not None:
            on_start(boards, lines)

        def check():
            for line in lines:
                if line.error is not None:
                    raise RuntimeError(f"the pacer of {line.name} failed: {line.error!r}")
            runtime = run.runtime
            if runtime.done or not boards:
                return
            if not any(b.running for b in boards):
                raise BoardsFailed("every board stopped before the run finished:\n" + _why(boards))
            # The first round waits for all K boards: one that died cannot come.
            dead = [b for b in boards if not b.running and b.process.returncode != 0]
            if dead and not runtime.started:
                raise BoardsFailed("a board stopped before the run started:\n" + _why(dead))

        try:
            server.serve(stop_after=timeout, check=check)
        finally:
            server = None                  # serve() closed it
        summary = run.finish()
        for board in boards:
            if board.wait(timeout=30) is None:
                log(f"board {board.index} did not exit after the run; stopping it")
    finally:
        for board in boards:
            board.stop()
        for line in lines:
            line.close()
        if server is not None:
            server._shutdown()
    summary["board_profile"] = profile.to_dict()
    summary["faults"] = faults.to_dict() if faults.active else None
    summary["boards"] = [_board_record(b, lines[b.index] if lines else None, folder) for b in boards]
    for record, voted in zip(summary["boards"], rounds_voted(run.folder.metrics(), K)):
        record["rounds_voted"] = voted
    summary["errors"] = summary.get("errors", []) + silent_board_errors(summary["boards"])
    run.folder.write_json(SUMMARY, summary)
    failed = [b for b in summary["boards"] if b["status"] != "ok"]
    for b in failed:
        log(f"board {b['id']}: {b['status']}: {b['message'] or 'see ' + b['log']}")
    return summary


def _why(boards) -> str:
    lines = []
    for b in boards:
        status, message = b.status()
        lines.append(f"  board {b.index}: {status}: {message or 'see ' + str(b.log_path)}")
    return "\n".join(lines)


def _link_stats_path(folder: Path, k: int) -> Path:
    """Where board k's agent writes its link figures (--stats-out)."""
    return folder / f"agent-{k}.link.json"


def _board_record(board: Board, line, folder: Path) -> dict:
    record = board.result()
    record["line"] = line.stats() if line is not None else None
    try:
        agent = json.loads(_link_stats_path(folder, board.index).read_text())
    except (OSError, ValueError):
        agent = None
    if agent is not None:
        counters = agent.get("counters", {}).get("total", {})
        record["agent_link"] = {
            "sessions": agent.get("sessions"), "link_failures": agent.get("link_failures"),
            "retransmissions": agent.get("arq", {}).get("retransmitted"),
            "acks_sent": agent.get("arq", {}).get("acks_sent"),
            "rejected": {r: n for r, n in agent.get("counters", {}).get("rejected", {}).items() if n},
            "wire_bytes_up": counters.get("up", {}).get("wire_bytes"),
            "wire_bytes_down": counters.get("down", {}).get("wire_bytes"),
        }
    else:
        record["agent_link"] = None
    return record
