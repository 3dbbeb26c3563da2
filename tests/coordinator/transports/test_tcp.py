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

from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.transports.server import Server
from fedzo.coordinator.transports.tcp import simulate_tcp
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.protocol import AGENT, Endpoint, Join, Session

QUIET = dict(log=lambda *a: None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        # 1. A well-framed frame of garbage (version 1, type vote): rejected, the connection stays.
        connect().sendall(struct.pack(">I", 40) + bytes([1, 4, 0]) + os.urandom(37))
        # 2. An oversized length: that stream is closed, nothing large is allocated.
        oversized = connect()
        oversized.sendall(struct.pack(">I", 2**31))
        # 3. A join sealed under the wrong key: bad tag.
        connect().sendall(Endpoint(Session(AGENT, b"w" * 32)).send(Join()))
        # 4. A replayed join: the same bytes on a second connection, once the first was answered.
        join_bytes = Endpoint(Session(AGENT, KEY)).send(Join(agent_id=0))
        replay_a = connect()
        replay_a.sendall(join_bytes)
        assert replay_a.recv(4096)                              # welcomed: its join was taken
        connect().sendall(join_bytes)
        assert oversized.recv(100) == b""                       # closed by the coordinator
        wait_until(lambda: seen["rejected"].get("replay") == 1 and seen["rejected"].get("bad_tag", 0) >= 1
                   and sum(seen["rejected"].values()) >= 4, "the coordinator to count the bad input")
        # A real agent now joins (it takes over block 0 from the replayed session) and finishes.
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
    assert rejected["bad_tag"] >= 1          # the wrong key
    assert rejected["oversized"] == 1
    assert rejected["replay"] == 1
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
    key_file.write_text(KEY.hex())
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
    key_file.write_text(KEY.hex())
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
    key_file.write_text(KEY.hex())
    stranger = subprocess.run(
        [sys.executable, "-m", "fedzo.cli", "agent", "--connect", f"127.0.0.1:{server.address[1]}",
         "--key-file", str(key_file), "--id", "7"], capture_output=True, text=True, timeout=PATIENCE)
    assert stranger.returncode == 2
    assert "will not have this agent (unknown_agent: agent id 7 is not in this run" in stranger.stderr
    run_agent_tcp(server.address, KEY, AgentRuntime(**QUIET), **QUIET)   # the run still completes
    thread.join(PATIENCE)
    assert not thread.is_alive() and not errors and run.runtime.done
