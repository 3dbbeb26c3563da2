"""A key per agent on a serial line (a paced pseudo-terminal): a whole run, and a revocation."""
import threading

from serving import Stop
from small_runs import run_small, small_config
from waiting import PATIENCE

from fedzo.coordinator.keys.book import KeyBook
from fedzo.coordinator.keys.issue import issue_keys
from fedzo.coordinator.keys.reload import Reloader
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.server import Server
from fedzo.edge.agent.refused import AgentRefused
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.serial import run_agent_serial
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.protocol.agentkeys import read_agent_key_file
from fedzo.firmware_sim.line import SerialLine

QUIET = dict(log=lambda *a: None)
BAUD = 115200


class Agent(threading.Thread):
    """One agent in a thread; keeps its exception."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.error = fn, None

    def run(self):
        try:
            self.fn()
        except Exception as exc:        # surfaced by the test
            self.error = exc


def test_agent_keys_over_serial_and_tcp_end_on_the_run_keys_theta_and_a_revoked_board_is_dropped(tmp_path):
    keys = tmp_path / "keys"
    issue_keys(keys, 2)
    own = [read_agent_key_file(keys / f"agent-{k}.key") for k in range(2)]
    _, _, reference = run_small(tmp_path, "run-key", agents=2)
    line = SerialLine(BAUD).start()
    try:
        # A whole run: agent 0 on TCP, agent 1 on the serial line, each under its own key.
        book = KeyBook(keys, **QUIET)
        run = Run(small_config(agents=2), tmp_path / "serial", **QUIET)
        server = Server(run, book.keyring, listen=("127.0.0.1", 0), serial=[line.coordinator_port], baud=BAUD,
                        **QUIET)
        agents = [Agent(lambda: run_agent_tcp(server.address, own[0], AgentRuntime(**QUIET), **QUIET)),
                  Agent(lambda: run_agent_serial(line.agent_port, own[1], AgentRuntime(**QUIET), baud=BAUD,
                                                 reconnect_seconds=PATIENCE, **QUIET))]
        for agent in agents:
            agent.start()
        server.serve(stop_after=2 * PATIENCE)
        summary = run.finish()
        for agent in agents:
            agent.join(PATIENCE)
        assert [a.error for a in agents] == [None, None]
        assert summary["theta_hash"] == reference["theta_hash"]
        assert [a["transport"] for a in summary["per_agent"]] == ["tcp", "serial"]

        # The same line, another run: board 1 joins, is revoked at a reload, and stops.
        book = KeyBook(keys, **QUIET)
        run = Run(small_config(agents=2), tmp_path / "revoked", **QUIET)
        server = Server(run, book.keyring, listen=None, serial=[line.coordinator_port], baud=BAUD, **QUIET)
        reloader = Reloader(book, run.runtime, server.push)
        board = Agent(lambda: run_agent_serial(line.agent_port, own[1], AgentRuntime(**QUIET), baud=BAUD,
                                               reconnect_seconds=PATIENCE, **QUIET))
        joined = threading.Event()

        def check():
            if not joined.is_set() and run.runtime.slots[1].link is not None:
                joined.set()
                (keys / "revoked").write_text("1\n")
                reloader.request()
            reloader.poll()
            if joined.is_set() and not board.is_alive():
                raise Stop

        board.start()
        try:
            server.serve(stop_after=2 * PATIENCE, check=check)
        except Stop:
            pass
        board.join(PATIENCE)
        assert not board.is_alive()
        assert isinstance(board.error, AgentRefused) and "key was revoked" in str(board.error)
        assert run.runtime.slots[1].link is None and run.runtime.rejected["revoked"] == 1
    finally:
        line.close()
