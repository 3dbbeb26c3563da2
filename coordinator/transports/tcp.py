"""`fedzo simulate --link tcp`: K `fedzo agent` processes against the coordinator on loopback TCP.

The selector loop itself is transports/server.py's Server, which serves TCP
agents and serial ports alike. If every agent process has exited while the
run still waits, the simulation stops with AgentsGone (naming each agent's
exit code and log) instead of waiting for agents that cannot come.
"""
import subprocess
import sys
from pathlib import Path

from fedzo.coordinator.run.folder import RUN_KEY, agent_log_name
from fedzo.coordinator.transports.server import Server
from fedzo.edge.protocol.keyfile import write_key_file


class AgentsGone(RuntimeError):
    """Every agent process exited before the run finished."""


def _last_line(path) -> str:
    lines = [line for line in Path(path).read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(empty log)"


def agent_command(*args) -> list:
    """The command line of a `fedzo agent` process with these arguments."""
    return [sys.executable, "-m", "fedzo.cli", "agent", *args]


def simulate_tcp(run, run_key: bytes, log=print, agent_args=(), timeout=None) -> dict:
    """K `fedzo agent` processes against this coordinator on loopback; returns the summary."""
    server = Server(run, run_key, listen=("127.0.0.1", 0), log=log)
    host, port = server.address
    folder = Path(run.folder.path)
    key_file = folder / RUN_KEY
    write_key_file(key_file, run_key)
    processes, logs = [], []
    for k in range(run.config.agents):
        agent_log = open(folder / agent_log_name(k), "w")
        logs.append(agent_log)
        # --task: the agent may build the run's task itself (a user's task needs its word)
        cmd = agent_command("--connect", f"{host}:{port}", "--key-file", str(key_file), "--id", str(k),
                            "--task", run.config.task, *agent_args)
        processes.append(subprocess.Popen(cmd, stdout=agent_log, stderr=subprocess.STDOUT))
    def check():
        if not run.runtime.done and all(p.poll() is not None for p in processes):
            for agent_log in logs:
                agent_log.flush()
            why = "; ".join(f"agent {k} exit code {p.returncode}: {_last_line(folder / agent_log_name(k))}"
                            for k, p in enumerate(processes))
            raise AgentsGone(f"every agent process exited before the run finished ({why}; logs in {folder})")

    try:
        server.serve(stop_after=timeout, check=check)
        summary = run.finish()
    finally:
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for agent_log in logs:
            agent_log.close()
    failed = [k for k, p in enumerate(processes) if p.returncode not in (0, None)]
    if failed:
        log(f"agents {failed} exited with an error; see {folder}/agent-K.log")
    return summary
