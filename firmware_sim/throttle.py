"""CPU slow-down of a board's agent process, and sampling of its memory.

What it really does: for a factor f > 1, a thread lets the process run for
period/f seconds, then stops it (SIGSTOP) for the rest of each period
(SIGCONT resumes it), so the agent gets at most 1/f of one core's wall time;
the process also runs at a lower priority (nice 10). This slows computing
(rollouts, imports) by about f, as a slower CPU would. It is not a slower
CPU: caches, memory bandwidth and the instruction mix stay this machine's,
timers and the serial line keep running in real time while the process is
stopped (a stopped agent answers up to one period late), and on a machine
whose cores are already busy the agent gets less than 1/f. With f = 1 no
signal is sent. A process that leads its own process group (a Board starts
its agent in a new session) is stopped and resumed with its whole group, so
the rollout workers it forks (`--workers`) are slowed down with it.

The same thread samples the process's peak resident memory (VmHWM) and peak
address space (VmPeak) from /proc every period, so a board's peak is known
even when the agent dies before reporting it.
"""
import os
import signal
import threading
import time

DEFAULT_PERIOD = 0.1
NICE = 10


def read_status(pid: int) -> dict:
    """VmHWM, VmRSS, VmPeak and VmData of a process in bytes ({} when it is gone or not Linux)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS", "VmPeak", "VmData"):
                    out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


class CpuThrottle:
    """Duty-cycle throttle and memory sampler of one process (see the module docstring)."""

    def __init__(self, process, factor: float = 1.0, period: float = DEFAULT_PERIOD):
        if not factor >= 1.0:
            raise ValueError(f"CPU factor must be >= 1, got {factor}")
        self.process, self.factor, self.period = process, factor, period
        self.peak_rss = 0
        self.peak_vm = 0
        self.peak_data = 0
        self.stopped_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"throttle-{process.pid}", daemon=True)

    def start(self) -> "CpuThrottle":
        if self.factor > 1.0:
            try:
                os.setpriority(os.PRIO_PROCESS, self.process.pid, NICE)
            except OSError:
                pass              # not allowed here: the duty cycle alone still applies
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop throttling; the process is left running (SIGCONT)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2 * self.period + 1.0)
        self._signal(signal.SIGCONT)

    def _alive(self) -> bool:
        return self.process.poll() is None

    def _signal(self, sig) -> bool:
        if not self._alive():        # never signal a reaped pid (it may be reused)
            return False
        pid = self.process.pid
        try:
            if os.getpgid(pid) == pid:       # the agent and the workers it forked
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
            return True
        except ProcessLookupError:
            return False

    def _sample(self) -> None:
        status = read_status(self.process.pid)
        self.peak_rss = max(self.peak_rss, status.get("VmHWM", 0))
        self.peak_vm = max(self.peak_vm, status.get("VmPeak", 0))
        self.peak_data = max(self.peak_data, status.get("VmData", 0))

    def _run(self) -> None:
        run_for = self.period / self.factor
        try:
            while not self._stop.is_set() and self._alive():
                self._sample()
                if self.factor <= 1.0:
                    self._stop.wait(self.period)
                    continue
                if self._stop.wait(run_for):
                    break
                if not self._signal(signal.SIGSTOP):
                    break
                t = time.monotonic()
                self._stop.wait(self.period - run_for)
                self._signal(signal.SIGCONT)
                self.stopped_seconds += time.monotonic() - t
        finally:
            self._signal(signal.SIGCONT)      # never leave a board frozen
