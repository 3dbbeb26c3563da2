"""One simulated board: a real `fedzo agent` process under a board profile.

The process is started through fedzo.firmware_sim.boot (RAM cap), with the
agent's own --memory-budget set to the same RAM so it refuses a run it
cannot hold, with one thread for NumPy/OpenBLAS (a board agent computes on
one core, and fewer threads reserve less memory), and under a CpuThrottle
(slow-down and memory sampling). Its output goes to a log file; `result()`
says how it ended, in words a user can act on.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

from fedzo.edge.agent.exit_codes import EXIT_OUT_OF_MEMORY, EXIT_REFUSED
from fedzo.edge.agent.out_of_memory import log_says_out_of_memory
from fedzo.firmware_sim.profiles import BoardProfile
from fedzo.firmware_sim.throttle import CpuThrottle


class Board:
    """A `fedzo agent` process running as board `index` of `profile`."""

    def __init__(self, index: int, profile: BoardProfile, agent_args, log_path, *, env=None):
        self.index, self.profile = index, profile
        self.agent_args = [str(a) for a in agent_args]
        self.log_path = Path(log_path)
        self.env = env
        self.process = None
        self.throttle = None
        self.started_at = self.ended_at = None
        self._log = None

    def command(self) -> list:
        """The command line this board runs."""
        ram = self.profile.ram_mb
        return [sys.executable, "-m", "fedzo.firmware_sim.boot", "--ram-mb", str(ram),
                "--board", f"{self.profile.name}-{self.index}", "--",
                "agent", *self.agent_args, "--memory-budget", str(ram)]

    def start(self) -> "Board":
        """Start the agent process and its throttle."""
        env = dict(os.environ if self.env is None else self.env)
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = "1"
        env["MALLOC_ARENA_MAX"] = "2"       # glibc would reserve 64 MiB arenas per thread
        self._log = open(self.log_path, "w")
        # its own session: the throttle stops and resumes the agent with its rollout workers
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        self.started_at = time.monotonic()
        self.throttle = CpuThrottle(self.process, self.profile.cpu_factor).start()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float) -> int | None:
        """Wait for the agent to exit on its own; its exit code (None if still running)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._ended()
        return code

    def stop(self, grace: float = 5.0) -> None:
        """Make sure the process is gone: SIGTERM, then SIGKILL after grace seconds."""
        if self.process is None:
            return
        if self.throttle is not None:
            self.throttle.stop()          # resumes a stopped process first
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._ended()

    def _ended(self):
        if self.ended_at is None:
            self.ended_at = time.monotonic()
        if self.throttle is not None:
            self.throttle.stop()
        if self._log is not None and not self._log.closed:
            self._log.close()

    def log_tail(self, lines: int = 20) -> list:
        """The last lines of the board's log."""
        try:
            return self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def status(self) -> tuple[str, str]:
        """(status, message): ok, running, out of memory, refused, killed or failed."""
        code = None if self.process is None else self.process.poll()
        if self.process is None:
            return "not started", ""
        if code is None:
            return "running", ""
        tail = self.log_tail()
        if code == 0:
            return "ok", ""
        last = next((l for l in reversed(tail) if l.strip()), f"exit code {code}")
        if code < 0:
            return "killed", f"killed by signal {-code}"
        if code == EXIT_OUT_OF_MEMORY or log_says_out_of_memory(tail):
            cap = f"{self.profile.ram_mb} MiB RAM cap"
            if cap in last:
                return "out of memory", last.strip()
            return "out of memory", f"under the {cap} of board {self.profile.name}: {last.strip()}"
        if code == EXIT_REFUSED:
            return "refused", last.strip()
        return "failed", last.strip()

    def result(self) -> dict:
        """How this board ended and what it used (JSON-ready)."""
        status, message = self.status()
        throttle = self.throttle
        return {
            "id": self.index, "board": self.profile.name, "link": self.profile.link_text(),
            "ram_cap_bytes": self.profile.ram_mb * 2**20, "cpu_factor": self.profile.cpu_factor,
            "exit_code": None if self.process is None else self.process.poll(),
            "status": status, "message": message,
            "peak_rss_bytes": throttle.peak_rss if throttle else None,
            "peak_data_bytes": throttle.peak_data if throttle else None,
            "stopped_seconds": round(throttle.stopped_seconds, 3) if throttle else 0.0,
            "run_seconds": (round(self.ended_at - self.started_at, 3)
                            if self.ended_at and self.started_at else None),
            "log": str(self.log_path),
        }
