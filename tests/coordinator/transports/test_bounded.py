"""The coordinator's state stays bounded whatever clients do (issue 11, item 4)."""
import socket

import numpy as np
from serving import Stop, serve_in_thread
from small_runs import KEY, Harness, small_config
from waiting import PATIENCE, wait_until

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports import server as server_module
from fedzo.coordinator.transports.server import MAX_PENDING, MAX_PENDING_PER_ADDRESS, Server, TcpLink
from fedzo.coordinator.transports.tally import Tally
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.protocol import AGENT, Endpoint, Error, ErrorCode, RejoinSecrets, Session, Sync

QUIET = dict(log=lambda *a: None)


def serve_until(server, done):
    """serve() in a thread until done() is true (or the run ends); returns (thread, errors)."""
    def check():
        if done():
            raise Stop()
    return serve_in_thread(server, check)


def test_connections_that_never_join_are_forgotten(tmp_path):
    run = Run(small_config(agents=1), tmp_path / "run", **QUIET)
    server = Server(run, KEY, **QUIET)
    cycles = 300
    thread, errors = serve_until(server, lambda: server.forgotten >= cycles)
    for k in range(cycles):
        socket.create_connection(server.address, timeout=PATIENCE).close()
        # One at a time: the server now takes a crowd at once (acceptor.py), and 300 queued
        # together from one address would meet the per-address limit for a run of one agent.
        wait_until(lambda: server.forgotten > k, "the stranger's link to be forgotten")
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors
    # Before: every accepted connection stayed in server.links for good.
    assert server.forgotten == cycles and server.links == []


def test_one_address_cannot_hold_every_pending_slot(tmp_path):
    run = Run(small_config(agents=1, rounds=1), tmp_path / "run", **QUIET)
    lines = []
    server = Server(run, KEY, log=lines.append)
    thread, errors = serve_until(server, lambda: False)      # serve() ends with the run
    hog = []
    try:
        for _ in range(MAX_PENDING):                      # idle connections from 127.0.0.2 (before: all taken)
            sock = socket.socket()
            sock.settimeout(PATIENCE)
            sock.bind(("127.0.0.2", 0))
            sock.connect(server.address)
            hog.append(sock)
        refused = MAX_PENDING - MAX_PENDING_PER_ADDRESS
        wait_until(lambda: sum(n for what, n in server.tally.totals.items() if "127.0.0.2" in what) == refused,
                   "the coordinator to refuse the hog's extra connections")
        # An agent from another address still gets in, and the run ends.
        run_agent_tcp(server.address, KEY, AgentRuntime(**QUIET), **QUIET)
        thread.join(PATIENCE)
    finally:
        for sock in hog:
            sock.close()
    assert not thread.is_alive() and not errors and run.runtime.done
    # Counted, and logged as counts: not one line per refusal.
    assert sum(1 for line in lines if "refused" in line) <= 2


def test_a_link_that_does_not_read_is_dropped_when_its_outbox_is_full(tmp_path):
    run = Run(small_config(agents=1), tmp_path / "run", **QUIET)
    server = Server(run, KEY, **QUIET)
    ours, theirs = socket.socketpair()
    try:
        link = TcpLink(ours, ("127.0.0.9", 1), KEY, RejoinSecrets())

        class Endpoint:                 # what a sealed message would be, without a session
            def send(self, msg):
                return bytes(64 * 1024)

        link.endpoint = Endpoint()
        server.links.append(link)
        server.selector.register(ours, server_module.selectors.EVENT_READ, link)
        sends = server.outbox_limit // (64 * 1024) + 2
        server._dispatch([(link, Error(ErrorCode.DIVERGED, "x"))] * sends)
        assert not link.open and len(link.outbox) <= server.outbox_limit + 64 * 1024
        assert server.tally.totals["links dropped: outbox full"] == 1
    finally:
        theirs.close()
        server._shutdown()


def test_sync_is_sent_at_most_once_per_round_per_link(tmp_path):
    h = Harness(tmp_path, agents=1)
    link = h.connect(AgentRuntime(**QUIET))
    # Open the Welcome on the agent's end (its session keys), without letting the agent work.
    data, link.to_agent = b"".join(link.to_agent), []
    link.agent_end.feed(data)
    for _ in range(20):                 # an insider repeating Error(DIVERGED) without reading
        h.deliver_up(link, link.agent_end.send(Error(ErrorCode.DIVERGED, "again")))
    syncs = [m for m in link.agent_end.feed(b"".join(link.to_agent)) if isinstance(m, Sync)]
    per_sync = -(-h.run.store.d * 2 // (16384 - 64))      # chunks of one int16 theta
    assert 0 < len(syncs) <= per_sync + 1 and {m.offset for m in syncs} == set(np.unique([m.offset for m in syncs]))
    assert len(syncs) == len({m.offset for m in syncs})   # one theta, not twenty
    assert h.runtime.rejected["repeated_sync"] == 19


def test_tally_logs_counts_once_per_interval():
    now = [0.0]
    lines = []
    tally = Tally(lines.append, interval=10.0, clock=lambda: now[0])
    for _ in range(1000):
        tally.note("connections refused: 64 without a join")
    assert lines == []
    now[0] = 10.0
    tally.note("frames rejected (bad_tag)")
    assert len(lines) == 1 and "connections refused: 64 without a join: 1000" in lines[0]
    assert "frames rejected (bad_tag): 1" in lines[0]
    tally.flush()
    assert len(lines) == 1 and tally.totals["connections refused: 64 without a join"] == 1000


def test_a_joined_link_that_starts_a_new_handshake_and_idles_is_closed(tmp_path, monkeypatch):
    monkeypatch.setattr(server_module, "HANDSHAKE_SECONDS", 0.5)
    run = Run(small_config(agents=2), tmp_path / "run", **QUIET)       # waits for a second agent
    server = Server(run, KEY, **QUIET)
    expired = "connections closed: no valid join in 0 s"
    thread, errors = serve_until(server, lambda: server.tally.totals.get(expired))
    agent = AgentRuntime(agent_id=0, **QUIET)
    endpoint = Endpoint(Session(AGENT, KEY))
    with socket.create_connection(server.address, timeout=PATIENCE) as sock:
        sock.sendall(endpoint.send(agent.hello()))
        while agent.logic is None:                    # Challenge -> Join -> Welcome
            for msg in endpoint.feed(sock.recv(65536)):
                for reply in agent.handle(msg):
                    sock.sendall(endpoint.send(reply))
        sock.sendall(endpoint.send(agent.hello()))    # a new handshake, never finished
        wait_until(lambda: sock.recv(65536) == b"", "the coordinator to close the idle link")
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors
    assert server.tally.totals[expired] == 1 and run.runtime.slots[0].link is None
