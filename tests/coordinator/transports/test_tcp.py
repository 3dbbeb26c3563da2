"""The runtime over real TCP sockets: bad input, killed agents, a restarted coordinator, accounting."""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

from serving import serve_in_thread
from small_runs import KEY, run_small, small_config
from waiting import PATIENCE, wait_until

from fedzo.edge.protocol.keyfile import write_key_file
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.server import Server
from fedzo.coordinator.transports.tcp import simulate_tcp
from fedzo.edge.agent.exit_codes import EXIT_REFUSED
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.protocol import (
    AGENT,
    COORDINATOR,
    PROTOCOL_VERSION,
    Bye,
    ByeReason,
    Challenge,
    Endpoint,
    Hello,
    Join,
    Session,
    Welcome,
    peek_header,
)

QUIET = dict(log=lambda *a: None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recv_until(sock, endpoint, kind):
    """Messages from sock (opened by endpoint) up to and including the first of type kind."""
    got = []
    while not any(isinstance(m, kind) for m in got):
        data = sock.recv(65536)
        assert data, f"the connection closed before a {kind.NAME}"
        got += endpoint.feed(data)
    return got


def scripted_join(sock, endpoint, join):
    """Hello, Challenge, Join, Welcome over sock; returns the bytes the agent sent."""
    sent = endpoint.send(Hello())
    sock.sendall(sent)
    recv_until(sock, endpoint, Challenge)
    join_bytes = endpoint.send(join)
    sock.sendall(join_bytes)
    recv_until(sock, endpoint, Welcome)
    return sent + join_bytes


def frame_types(sock, *until):
    """Types of the length-prefixed frames read from sock (unopened) until one of `until` arrives."""
    buffer, types = b"", []
    while not types or types[-1] not in until:
        data = sock.recv(65536)
        if not data:
            break
        buffer += data
        while len(buffer) >= 4 and len(buffer) >= 4 + struct.unpack(">I", buffer[:4])[0]:
            n = struct.unpack(">I", buffer[:4])[0]
            types.append(peek_header(buffer[4:4 + n]).type)
            buffer = buffer[4 + n:]
    return types


def link_of(server, sock):
    """The server's TcpLink for our end `sock`."""
    port = sock.getsockname()[1]
    return next(l for l in list(server.links) if l.name.endswith(f":{port}"))


def finish_with_agents(server, thread, errors, k):
    """Real agents with ids 0..k-1 (one per thread) run the server's run to its end."""
    import threading
    helpers = [threading.Thread(target=run_agent_tcp, args=(server.address, KEY, AgentRuntime(agent_id=i, **QUIET)),
                                kwargs=QUIET, daemon=True) for i in range(k)]
    for helper in helpers:
        helper.start()
    for helper in helpers:
        helper.join(PATIENCE)
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors and server.runtime.done


def test_a_recorded_join_is_refused_by_a_restarted_coordinator(tmp_path):
    """Issue 11, finding 1: after a restart with the same run key, a recorded Join
    was accepted: theta went out in a Sync and the real agent was told Bye(REPLACED)."""
    config = small_config(agents=1, rounds=2)
    run = Run(config, tmp_path / "first", **QUIET)
    server = Server(run, KEY, **QUIET)
    thread, errors = serve_in_thread(server)
    with socket.create_connection(server.address, timeout=PATIENCE) as sock:   # recorded on the wire
        recorded = scripted_join(sock, Endpoint(Session(AGENT, KEY)), Join(agent_id=0))
    run_agent_tcp(server.address, KEY, AgentRuntime(agent_id=0, **QUIET), **QUIET)
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors

    again = Run(config, tmp_path / "second", **QUIET)        # a new coordinator, the same run key
    server = Server(again, KEY, **QUIET)
    rejected = {}
    thread, errors = serve_in_thread(server, check=lambda: rejected.update(
        bad_tag=sum(l.counters.rejected["bad_tag"] for l in list(server.links))))
    with socket.create_connection(server.address, timeout=PATIENCE) as replay:
        replay.sendall(recorded)
        assert frame_types(replay, Challenge.TYPE) == [Challenge.TYPE]
        wait_until(lambda: rejected.get("bad_tag") == 1, "the coordinator to refuse the replayed join")
        link = link_of(server, replay)
        assert link.counters.by_type["down"] == {"challenge": 1}      # no Welcome, no Sync
        assert again.runtime.slot_of(link) is None
        # The real agent joins and finishes, never told it was replaced.
        seen = []
        run_agent_tcp(server.address, KEY, AgentRuntime(agent_id=0, log=seen.append), **QUIET)
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors and again.runtime.done
    assert not any("joining again" in line for line in seen)


def test_a_key_holder_cannot_take_a_live_agents_id_over_tcp(tmp_path):
    """Issue 11, finding 3: any key holder could Join with another agent's id; the
    victim was told Bye and exited, and the insider voted in its slot."""
    from fedzo.edge.protocol import Error, ErrorCode
    run = Run(small_config(agents=2, rounds=1), tmp_path / "insider", **QUIET)
    server = Server(run, KEY, **QUIET)
    thread, errors = serve_in_thread(server)
    with socket.create_connection(server.address, timeout=PATIENCE) as victim, \
            socket.create_connection(server.address, timeout=PATIENCE) as insider:
        scripted_join(victim, Endpoint(Session(AGENT, KEY)), Join(agent_id=0))
        endpoint = Endpoint(Session(AGENT, KEY))          # the run key, but not the victim's session
        insider.sendall(endpoint.send(Hello()))
        recv_until(insider, endpoint, Challenge)
        insider.sendall(endpoint.send(Join(agent_id=0)))
        refusal = recv_until(insider, endpoint, Error)[-1]
        assert refusal.code == ErrorCode.ID_IN_USE and insider.recv(100) == b""   # refused and closed
        assert run.runtime.slots[0].link is link_of(server, victim)
        assert run.runtime.rejected["id_in_use"] == 1
    # The victim's connection closes: its id is free; real agents finish the run.
    finish_with_agents(server, thread, errors, 2)


def test_a_second_join_on_one_connection_holds_one_slot(tmp_path):
    """Issue 11, finding 3: a second Join on one connection put that link in two
    slots, and every later round waited the full round timeout."""
    run = Run(small_config(agents=2, rounds=2), tmp_path / "twice", **QUIET)
    server = Server(run, KEY, **QUIET)
    thread, errors = serve_in_thread(server)
    with socket.create_connection(server.address, timeout=PATIENCE) as sock:
        endpoint = Endpoint(Session(AGENT, KEY))
        scripted_join(sock, endpoint, Join())
        scripted_join(sock, endpoint, Join())          # again, on the same connection
        link = link_of(server, sock)
        wait_until(lambda: run.runtime.slot_of(link) is not None, "the second join to be taken")
        assert [s.agent_id for s in run.runtime.slots if s.link is link] == [1]
        assert run.runtime.slots[0].link is None and run.runtime.phase == "joining"
    # Two real agents run the rounds; none waits for a deadline (the round timeout is far away).
    run.runtime.round_timeout = 10 * PATIENCE
    finish_with_agents(server, thread, errors, 2)
    assert all(m["voters"] == 2 for m in run.folder.metrics())


def test_bye_replaced_makes_the_agent_join_again():
    """Issue 11, finding 1: an agent treated any Bye as the end of the run and exited 0."""
    listener = socket.create_server(("127.0.0.1", 0))
    hellos = []

    def coordinator():                   # replaces the agent once, then ends the run
        for reason in (ByeReason.REPLACED, ByeReason.DONE):
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(PATIENCE)
                endpoint = Endpoint(Session(COORDINATOR, KEY))
                hellos.append(recv_until(conn, endpoint, Hello)[-1])
                conn.sendall(endpoint.send(Challenge()))
                recv_until(conn, endpoint, Join)
                conn.sendall(endpoint.send(Bye(reason, "test")))
                conn.recv(100)           # until the agent closes its end

    import threading
    thread = threading.Thread(target=coordinator, daemon=True)
    thread.start()
    try:
        runtime = AgentRuntime(**QUIET)
        run_agent_tcp(listener.getsockname(), KEY, runtime, reconnect_seconds=PATIENCE, **QUIET)
        thread.join(PATIENCE)
    finally:
        listener.close()
    assert not thread.is_alive() and len(hellos) == 2 and runtime.done


def test_tcp_run_matches_the_inproc_run_and_counts_what_the_sockets_carried(tmp_path):
    _, _, inproc = run_small(tmp_path, "inproc", agents=2)
    run = Run(small_config(agents=2), tmp_path / "tcp", **QUIET)
    run.runtime.report_timeout = PATIENCE        # the agents' reports are asserted on: wait for them
    summary = simulate_tcp(run, KEY, **QUIET, timeout=2 * PATIENCE)
    assert summary["theta_hash"] == inproc["theta_hash"]
    assert summary["bytes_up"] == inproc["bytes_up"] and summary["bytes_down"] == inproc["bytes_down"]
    assert all(a["peak_rss_bytes"] for a in summary["per_agent"])


def test_counted_bytes_equal_socket_bytes(tmp_path):
    run = Run(small_config(agents=1), tmp_path / "acct", **QUIET)
    server = Server(run, KEY, **QUIET)
    thread, errors = serve_in_thread(server)
    agent_counters = run_agent_tcp(server.address, KEY, AgentRuntime(**QUIET), **QUIET)
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors
    link = server.links[0]
    assert link.bytes_in == link.counters.total["up"].wire_bytes > 0
    assert link.bytes_out == link.counters.total["down"].wire_bytes > 0
    # Both ends agree on every message and byte.
    for direction in ("up", "down"):
        assert agent_counters.total[direction].frame_bytes == link.counters.total[direction].frame_bytes
    # TCP/IP headers, reported separately: the kernel's segment counts x the header size.
    tcp = link.transport_stats()
    if sys.platform != "linux":
        return                                           # only Linux reports segment counts
    assert tcp["tcp_segments_down"] >= link.counters.total["down"].messages // 2 > 0
    per_segment = tcp["tcp_ip_header_bytes_down"] // tcp["tcp_segments_down"]
    assert per_segment in (40, 52, 60, 72)               # IPv4/IPv6, with or without timestamps
    assert tcp["tcp_ip_header_bytes_up"] == tcp["tcp_segments_up"] * per_segment


def test_bad_input_is_rejected_and_counted_while_the_run_goes_on(tmp_path):
    run = Run(small_config(agents=1, rounds=2), tmp_path / "bad", **QUIET)
    server = Server(run, KEY, **QUIET)
    seen = {"rejected": {}}

    def count_rejections():              # in the server's thread, on every pass
        totals = {}
        for counters in [l.counters for l in server.links] + [server.unjoined]:   # never-joined links are forgotten
            for reason, n in counters.rejected.items():
                totals[reason] = totals.get(reason, 0) + n
        seen["rejected"] = totals

    thread, errors = serve_in_thread(server, check=count_rejections)
    address = server.address
    sockets = []

    def connect():
        sock = socket.create_connection(address, timeout=PATIENCE)    # no recv waits forever
        sockets.append(sock)
        return sock

    try:
        # 1. A well-framed frame of garbage (type vote): rejected, the connection stays.
        connect().sendall(struct.pack(">I", 40) + bytes([PROTOCOL_VERSION, 4, 0]) + os.urandom(37))
        # 2. An oversized length: that stream is closed, nothing large is allocated.
        oversized = connect()
        oversized.sendall(struct.pack(">I", 2**31))
        # 3. A hello sealed under the wrong key: bad tag.
        connect().sendall(Endpoint(Session(AGENT, b"w" * 32)).send(Hello()))
        # 4. A replayed handshake: the same bytes on a second connection, once the first was welcomed.
        first = connect()
        recorded = scripted_join(first, Endpoint(Session(AGENT, KEY)), Join(agent_id=0))
        replay = connect()
        replay.sendall(recorded)
        assert frame_types(replay, Challenge.TYPE) == [Challenge.TYPE]
        assert oversized.recv(100) == b""                       # closed by the coordinator
        wait_until(lambda: seen["rejected"].get("bad_tag", 0) >= 2
                   and sum(seen["rejected"].values()) >= 4, "the coordinator to count the bad input")
        # The replay earned a Challenge and nothing more; block 0 stays with the first connection.
        assert link_of(server, replay).counters.by_type["down"] == {"challenge": 1}
        assert run.runtime.slots[0].link is link_of(server, first)
        first.close()
        # A real agent now joins block 0 (free once the scripted agent left) and finishes.
        run_agent_tcp(address, KEY, AgentRuntime(agent_id=0, **QUIET), **QUIET)
        thread.join(PATIENCE)
    finally:
        for sock in sockets:
            sock.close()
    assert not thread.is_alive() and not errors and run.runtime.done and run.runtime.round == 2
    rejected = {}
    for counters in [l.counters for l in server.links] + [server.unjoined]:
        for reason, n in counters.rejected.items():
            rejected[reason] = rejected.get(reason, 0) + n
    assert sum(rejected.values()) >= 4
    assert rejected["bad_tag"] >= 2          # the wrong key, the replayed join
    assert rejected["oversized"] == 1
    assert server.closed_streams == 1


def _agent_process(port, key_file, agent_id, log):
    cmd = [sys.executable, "-m", "fedzo.cli", "agent", "--connect", f"127.0.0.1:{port}",
           "--key-file", str(key_file), "--id", str(agent_id), "--reconnect-seconds", str(PATIENCE)]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def test_a_hung_then_killed_agent_counts_zero_and_is_resynced_when_it_returns(tmp_path):
    """Agent 1 hangs (SIGSTOP) after round 0: round 1 closes at its deadline with its vote
    as 0. It is then killed, and a new process with its id is resynced and votes again.

    The deadline is far off, so a healthy agent never runs out of time however
    loaded the machine; once agent 0 has voted in round 1, the runtime's clock
    is moved past it, and the round must close because its deadline passed.
    """
    config = small_config(agents=2, rounds=4, batch=2)
    round_timeout = 1000.0
    run = Run(config, tmp_path / "kill", round_timeout=round_timeout, **QUIET)
    run.runtime.report_timeout = PATIENCE
    skipped = []                         # seconds the runtime's clock was moved on
    run.runtime.clock = lambda: time.monotonic() + sum(skipped)
    server = Server(run, KEY, **QUIET)
    key_file = tmp_path / "run.key"
    write_key_file(key_file, KEY)
    port = server.address[1]
    log = open(tmp_path / "agents.log", "w")
    agents = [_agent_process(port, key_file, k, log) for k in range(2)]
    closed = run.runtime.on_round_closed
    events = []
    paused = []                          # agent 0, stopped until the new agent 1 has joined

    def on_closed(info):
        closed(info)
        events.append(f"round {info['round']} closed")
        if info["round"] == 0:
            agents[1].send_signal(signal.SIGSTOP)   # hangs: round 1 must close at its deadline
        if info["round"] == 1:
            agents[1].send_signal(signal.SIGKILL)   # now dead; a new process takes its place
            agents[1].wait()
            # Round 2 waits for agent 0's vote, so the new process joins it in time.
            agents[0].send_signal(signal.SIGSTOP)
            paused.append(agents[0])
            agents.append(_agent_process(port, key_file, 1, log))

    def check():                         # in the server's thread, on every pass
        runtime = run.runtime
        if runtime.round == 1 and runtime.phase == "round" and runtime.slots[0].vote is not None and not skipped:
            events.append("round 1 past its deadline")
            skipped.append(round_timeout)
        if paused and runtime.slots[1].joins == 2:
            paused.pop().send_signal(signal.SIGCONT)

    run.runtime.on_round_closed = on_closed
    try:
        thread, errors = serve_in_thread(server, check=check)
        thread.join(2 * PATIENCE)
        summary = run.finish()
    finally:
        for p in agents:
            p.send_signal(signal.SIGCONT)
            try:
                p.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()
    assert not thread.is_alive() and not errors and run.runtime.done
    metrics = run.folder.metrics()
    assert metrics[1]["votes"][1] == 0 and metrics[1]["voters"] == 1
    # It waited for the deadline: agent 0's vote alone did not close the round.
    assert events[:3] == ["round 0 closed", "round 1 past its deadline", "round 1 closed"]
    slot = run.runtime.slots[1]
    assert slot.joins == 2 and slot.syncs >= 1                       # rejoined and resynced
    assert [m["voters"] for m in metrics[2:]] == [2, 2]               # back in the later rounds
    assert summary["per_agent"][1]["peak_rss_bytes"]                  # the new process reported
    assert agents[-1].returncode == 0


def test_coordinator_killed_and_resumed_ends_bit_identical(tmp_path):
    config = small_config(agents=2, rounds=5, batch=2)
    _, _, whole = run_small(tmp_path, "whole", agents=2, rounds=5, batch=2)
    port = free_port()
    out = tmp_path / "resumed"
    key_file = tmp_path / "run.key"
    write_key_file(key_file, KEY)
    run_args = [f"--{k.replace('_', '-')}={v}" for k, v in config.to_dict().items() if k != "actor"]
    coordinator = [sys.executable, "-m", "fedzo.cli", "coordinator", "--listen", f"127.0.0.1:{port}",
                   "--key-file", str(key_file)]
    log = open(tmp_path / "procs.log", "w")
    first = subprocess.Popen(coordinator + ["--out", str(out)] + run_args, stdout=log, stderr=subprocess.STDOUT)
    agents = [_agent_process(port, key_file, k, log) for k in range(2)]
    metrics = out / "metrics.jsonl"
    try:
        wait_until(lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= 2,
                   "the first coordinator to close two rounds")
        assert first.poll() is None, "the first coordinator ended before it could be killed mid-run"
        first.kill()                                    # the laptop crashes mid-run
        first.wait()
        second = subprocess.run(coordinator + ["--resume", str(out)], stdout=log, stderr=subprocess.STDOUT,
                                timeout=2 * PATIENCE)
        for p in agents:
            p.wait(timeout=PATIENCE)
    finally:
        for p in [first] + agents:
            if p.poll() is None:
                p.kill()
                p.wait()
        log.close()
    assert second.returncode == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["theta_hash"] == whole["theta_hash"]
    assert summary["rounds"] == 5
    assert [json.loads(l)["round"] for l in metrics.read_text().splitlines()] == [0, 1, 2, 3, 4]
    assert all(p.returncode == 0 for p in agents)


def test_an_agent_the_coordinator_refuses_exits_with_the_reason(tmp_path):
    run = Run(small_config(agents=1, rounds=1), tmp_path / "refuse", **QUIET)
    server = Server(run, KEY, **QUIET)
    thread, errors = serve_in_thread(server)
    key_file = tmp_path / "run.key"
    write_key_file(key_file, KEY)
    stranger = subprocess.run(
        [sys.executable, "-m", "fedzo.cli", "agent", "--connect", f"127.0.0.1:{server.address[1]}",
         "--key-file", str(key_file), "--id", "7"], capture_output=True, text=True, timeout=PATIENCE)
    assert stranger.returncode == EXIT_REFUSED
    assert "refused: the coordinator refused this agent: agent id 7 is not in this run" in stranger.stderr
    run_agent_tcp(server.address, KEY, AgentRuntime(**QUIET), **QUIET)   # the run still completes
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors and run.runtime.done
