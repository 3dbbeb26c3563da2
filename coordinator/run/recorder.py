"""A run's after-round work, in round order, off the thread that serves the links.

After each round the coordinator evaluates theta when due, appends the
round's metrics line and writes a checkpoint with an fsync. That takes from
milliseconds to minutes (200 evaluation episodes at the task's 1000-step
limit), and the server's loop (coordinator/transports/server.py) must not
stop for it: a serial agent whose packets go unacknowledged for its link
timeout loses its link, and on TCP the closed round's frames would wait.

A `Recorder` runs such jobs one at a time, in the order they were given: on
one worker thread (`background=True`, what the server uses) or at once in
the caller's thread (the in-process link, which serves no line). A thread,
not a process: the evaluation's MuJoCo steps release the GIL, and a
selector loop beside 200 evaluation episodes was late by at most 8 ms per
pass here (docs/DECISIONS.md), far below the ARQ's 0.35 s timer.

The first job that raises stops the recorder: the jobs after it are
dropped (a checkpoint must not follow a round whose record failed), and
`check()` and `wait()` raise that same exception in the caller's thread.
"""
import queue
import threading

_STOP = object()


class Recorder:
    """Runs jobs (callables without arguments) in order; see the module docstring."""

    def __init__(self, background=False, name="fedzo-recorder"):
        self.background, self.name = background, name
        self.error = None             # the exception of the job that failed, if one did
        self._jobs = queue.Queue()
        self._pending = 0             # jobs given and not yet finished (or dropped)
        self._lock = threading.Condition()
        self._thread = None

    def submit(self, job) -> None:
        """Run `job` after every job given before it (now, when not in the background)."""
        if self.error is not None:
            return                    # stopped: check() reports why
        if not self.background:
            job()                     # its exception goes to the caller, as any call's would
            return
        with self._lock:
            self._pending += 1
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
            self._thread.start()
        self._jobs.put(job)

    @property
    def idle(self) -> bool:
        """No job is waiting or running."""
        with self._lock:
            return self._pending == 0

    @property
    def settled(self) -> bool:
        """Every job given so far has finished, and none failed."""
        return self.idle and self.error is None

    def check(self) -> None:
        """Raise the exception a job raised, if one did."""
        if self.error is not None:
            raise self.error

    def wait(self, timeout=None) -> bool:
        """Until every job given so far has finished (True) or `timeout` passed (False);
        raises a job's exception."""
        with self._lock:
            finished = self._lock.wait_for(lambda: self._pending == 0, timeout)
        self.check()
        return finished

    def close(self) -> None:
        """Let the worker thread end once the jobs before this call are done (no waiting here)."""
        if self._thread is not None:
            self._jobs.put(_STOP)
            self._thread = None

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            self._run(job)
            with self._lock:
                self._pending -= 1
                self._lock.notify_all()

    def _run(self, job) -> None:
        if self.error is not None:
            return                    # a job before this one failed
        try:
            job()
        except BaseException as exc:  # given back to the caller's thread by check() and wait()
            self.error = exc
