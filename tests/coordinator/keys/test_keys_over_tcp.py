"""A key per agent over real TCP: a whole run, a key that tries another id, a revoked key,
and a revocation at SIGHUP that disconnects a connected agent (a real signal, a real process)."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading

from serving import Stop, coordinator_with_agents, free_port, serve_in_thread
from small_runs import run_small, small_config
from waiting import PATIENCE, wait_until

from fedzo.cli import main
from fedzo.coordinator.keys.book import KeyBook
from fedzo.coordinator.keys.issue import issue_keys
from fedzo.coordinator.keys.reload import Reloader
from fedzo.coordinator.run.folder import RunFolder
from fedzo.coordinator.run.lifecycle import Run
from fedzo.coordinator.run.record import read_record, resumed_options
from fedzo.coordinator.transports.server import Server
from fedzo.coordinator.transports.tcp import agent_command
from fedzo.edge.agent.exit_codes import EXIT_BAD_INPUT, EXIT_REFUSED
from fedzo.edge.agent.runtime import AgentRuntime
from fedzo.edge.agent.tcp import run_agent_tcp
from fedzo.edge.protocol import (
    AGENT,
    Bye,
    ByeReason,
    Challenge,
    Endpoint,
    ErrorCode,
    Hello,
    Join,
    Refusal,
    Session,
    Welcome,
)
from fedzo.edge.protocol.agentkeys import read_agent_key_file, write_agent_key_file

QUIET = dict(log=lambda *a: None)


def run_args(config) -> list:
    return [f"--{k.replace('_', '-')}={v}" for k, v in config.to_dict().items() if k != "actor"]


def messages_until_closed(sock, endpoint) -> list:
    """Every message read from sock until the peer closes it."""
    got = []
    while data := sock.recv(65536):
        got += endpoint.feed(data)
    return got


def join_as(address, agent_key, agent_id=None):
    """A scripted agent: Hello, Challenge, Join (as agent_id, default the key's own), Welcome.
    Returns (socket, endpoint) with the session established."""
    sock = socket.create_connection(address, timeout=PATIENCE)
    endpoint = Endpoint(Session(AGENT, agent_key))
    sock.sendall(endpoint.send(Hello()))
    got = []
    while not any(isinstance(m, Challenge) for m in got):
        got += endpoint.feed(sock.recv(65536))
    if agent_id is not None and agent_id != agent_key.agent_id:
        endpoint.session.keyed_id = None      # a modified agent: nothing on its side stops it
    sock.sendall(endpoint.send(Join(agent_key.agent_id if agent_id is None else agent_id)))
    return sock, endpoint


def wait_for_welcome(sock, endpoint):
    got = []
    while not any(isinstance(m, Welcome) for m in got):
        data = sock.recv(65536)
        assert data, "closed before a Welcome"
        got += endpoint.feed(data)


def test_a_run_with_agent_keys_learns_the_theta_of_the_run_key(tmp_path):
    """`fedzo coordinator keys`, `fedzo coordinator --agent-keys`, `fedzo agent --key`: the whole
    command line, real agent processes; the math is the run key's, so theta ends the same."""
    config = small_config(agents=2)
    _, _, reference = run_small(tmp_path, "run-key", agents=2)
    keys = tmp_path / "keys"
    assert main(["coordinator", "keys", "--agents", "2", "--out", str(keys)]) == 0
    port, out = free_port(), tmp_path / "agent-keys"
    result = []
    coordinator = threading.Thread(target=lambda: result.append(main(
        ["coordinator", "--agent-keys", str(keys), "--listen", f"127.0.0.1:{port}", "--out", str(out),
         *run_args(config)])), daemon=True)
    coordinator.start()
    with open(tmp_path / "agents.log", "w") as log:
        agents = [subprocess.Popen(agent_command("--connect", f"127.0.0.1:{port}", "--key",
                                                 str(keys / f"agent-{k}.key"), "--task", config.task),
                                   stdout=log, stderr=subprocess.STDOUT) for k in range(2)]
        try:
            coordinator.join(2 * PATIENCE)
            codes = [p.wait(timeout=PATIENCE) for p in agents]
        finally:
            for p in agents:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    assert result == [0] and codes == [0, 0], (tmp_path / "agents.log").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["theta_hash"] == reference["theta_hash"]
    assert [a["id"] for a in summary["per_agent"]] == [0, 1]
    # A resumed run is served with the same keys (run.json keeps the directory).
    folder = RunFolder(out, create=False)
    assert resumed_options(folder, read_record(folder), {})["agent_keys"] == str(keys.resolve())


def test_a_key_cannot_join_as_another_agent_and_a_revoked_key_is_refused(tmp_path):
    keys = tmp_path / "keys"
    issue_keys(keys, 3)
    (keys / "revoked").write_text("2   # a lost board\n")
    book = KeyBook(keys, **QUIET)
    run = Run(small_config(agents=2, rounds=1), tmp_path / "run", **QUIET)
    server = Server(run, book.keyring, **QUIET)
    thread, errors = serve_in_thread(server)
    own = [read_agent_key_file(keys / f"agent-{k}.key") for k in range(3)]
    address = f"127.0.0.1:{server.address[1]}"

    # Agent 1's key, with a Join for agent 0: no Welcome, no slot; counted.
    sock, endpoint = join_as(server.address, own[1], agent_id=0)
    with sock:
        wait_until(lambda: book.keyring.refused["wrong_agent"] == 1, "the join as another agent to be refused")
        assert run.runtime.slots[0].link is None and run.runtime.slots[1].link is None
    # Agent 1's secret in a file that says agent 0: its Hello does not verify.
    forged = tmp_path / "forged.key"
    write_agent_key_file(forged, 0, own[1].secret)
    stolen = subprocess.run(agent_command("--connect", address, "--key", str(forged)),
                            capture_output=True, text=True, timeout=PATIENCE)
    assert stolen.returncode == EXIT_REFUSED and "does not accept this key" in stolen.stderr
    # The revoked agent: refused at its Hello, told why, counted.
    revoked = subprocess.run(agent_command("--connect", address, "--key", str(keys / "agent-2.key")),
                             capture_output=True, text=True, timeout=PATIENCE)
    assert revoked.returncode == EXIT_REFUSED
    assert "refused: the coordinator revoked this agent's key" in revoked.stderr
    assert book.keyring.refused["revoked"] == 1
    assert server.tally.totals["frames rejected (revoked)"] == 1
    assert server.tally.totals["hellos refused (revoked agent key)"] == 1
    # A key file and an --id that disagree: bad input, nothing sent.
    mismatch = subprocess.run(agent_command("--connect", address, "--key", str(keys / "agent-1.key"), "--id", "0"),
                              capture_output=True, text=True, timeout=PATIENCE)
    assert mismatch.returncode == EXIT_BAD_INPUT
    assert "--id 0 does not match the key file" in mismatch.stderr and "agent 1's key" in mismatch.stderr

    helpers = [threading.Thread(target=run_agent_tcp, args=(server.address, own[k], AgentRuntime(**QUIET)),
                                kwargs=QUIET, daemon=True) for k in range(2)]
    for helper in helpers:
        helper.start()
    thread.join(2 * PATIENCE)
    assert not thread.is_alive() and not errors and run.runtime.done
    assert [s.joins for s in run.runtime.slots] == [1, 1]


def test_a_reload_disconnects_a_revoked_agent_and_a_bad_list_changes_nothing(tmp_path):
    """The hook the SIGHUP handler calls (Reloader.request), with the Server serving."""
    keys = tmp_path / "keys"
    issue_keys(keys, 2)
    lines = []
    book = KeyBook(keys, log=lines.append)
    run = Run(small_config(agents=2, rounds=1), tmp_path / "run", **QUIET)
    server = Server(run, book.keyring, **QUIET)
    reloader = Reloader(book, run.runtime, server.push)
    stop = threading.Event()

    def check():
        reloader.poll()
        if stop.is_set():
            raise Stop

    thread, errors = serve_in_thread(server, check=check)
    try:
        sock, endpoint = join_as(server.address, read_agent_key_file(keys / "agent-1.key"))
        with sock:
            wait_for_welcome(sock, endpoint)
            (keys / "revoked").write_text("1\nagent two\n")          # malformed: nothing changes
            reloader.request()
            wait_until(lambda: book.failed_reloads == 1, "the failed reload")
            assert "line 2" in lines[-1] and run.runtime.slots[1].link is not None
            (keys / "revoked").write_text("1\n")
            reloader.request()
            got = messages_until_closed(sock, endpoint)
        assert [(type(m), m.code) for m in got] == [(Bye, ByeReason.EXCLUDED)]
        assert "key was revoked" in got[0].text
        assert run.runtime.slots[1].link is None                     # the slot is free
        assert run.runtime.rejected["revoked"] == 1 and book.disconnected == 1
    finally:
        stop.set()
        thread.join(PATIENCE)
    assert not errors


def _lines_of(process, seen):
    for line in process.stdout:
        seen.append(line)


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sighup_to_a_coordinator_process_disconnects_a_revoked_agent(tmp_path):
    """A real `fedzo coordinator` and a real `fedzo agent --key`, a real SIGHUP."""
    keys = tmp_path / "keys"
    issue_keys(keys, 2)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "fedzo.cli", "coordinator", "--agent-keys", str(keys),
                                "--listen", f"127.0.0.1:{port}", "--out", str(tmp_path / "run"),
                                *run_args(small_config(agents=2, rounds=1))],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               # Ctrl-C's signal, as a terminal gives it: a test run started in the
                               # background of a shell without job control has SIGINT ignored, and
                               # its children would inherit that.
                               preexec_fn=_default_sigint)
    seen = []
    reader = threading.Thread(target=_lines_of, args=(process, seen), daemon=True)
    reader.start()
    agent = None
    try:
        wait_until(lambda: any("kill -HUP" in line for line in seen), "the coordinator to listen")
        # Agent 1 joins; the run waits for agent 0, so agent 1 stays connected.
        agent = subprocess.Popen(agent_command("--connect", f"127.0.0.1:{port}", "--key", str(keys / "agent-1.key"),
                                               "--task", "hopper"),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_until(lambda: any("agent 1 joined" in line for line in seen), "agent 1 to join")
        (keys / "revoked").write_text("1  # stolen\n")
        os.kill(process.pid, signal.SIGHUP)
        out, err = agent.communicate(timeout=PATIENCE)
        assert agent.returncode == EXIT_REFUSED, out + err
        assert "refused: the coordinator excluded this agent: agent 1's key was revoked" in err
        wait_until(lambda: any("agent 1 disconnected: its key was revoked" in line for line in seen),
                   "the coordinator to free the slot")
        assert any("ending the sessions of agents [1]" in line for line in seen)
        # It comes back: its Hello is refused as revoked.
        with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as again:
            endpoint = Endpoint(Session(AGENT, read_agent_key_file(keys / "agent-1.key")))
            again.sendall(endpoint.send(Hello()))
            answer = messages_until_closed(again, endpoint)
        assert [(type(m), m.code) for m in answer] == [(Refusal, ErrorCode.REVOKED)]
        assert process.poll() is None                                   # the run goes on
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=PATIENCE) == 130
    finally:
        for p in (process, agent):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        reader.join(PATIENCE)


def _serve_with_keyed_agents(argv, port, keys) -> int:
    """`fedzo coordinator ARGV` in a thread, and agents 0 and 1 under their own keys; its exit code."""
    return coordinator_with_agents(argv, port, key_of=lambda k: read_agent_key_file(keys / f"agent-{k}.key"))


def test_a_resumed_run_is_served_with_the_keys_it_started_with(tmp_path):
    _, _, reference = run_small(tmp_path, "whole", agents=2, rounds=3)
    keys = tmp_path / "keys"
    issue_keys(keys, 2)
    port, out = free_port(), tmp_path / "run"
    first = ["--agent-keys", str(keys), "--listen", f"127.0.0.1:{port}", "--out", str(out),
             *run_args(small_config(agents=2, rounds=2))]
    assert _serve_with_keyed_agents(first, port, keys) == 0
    # Resumed without naming the keys: run.json has them; the run key would be refused.
    assert _serve_with_keyed_agents(["--resume", str(out), "--rounds", "3"], port, keys) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rounds"] == 3 and summary["theta_hash"] == reference["theta_hash"]
