"""A round's episodes on every core an agent may use: a persistent pool of forked workers.

The 2·N·D episodes of a round are independent: each is a pure function of
(theta, reset seed, task), because `task.reset(seed)` resets MjData and reseeds
the reset noise. So they can run anywhere, in any order, and the returns (and
the votes built from them) are the same bits whatever process ran them.

`Rollouts(task, policy, workers)` runs a list of jobs (variant, reset seed)
under a few parameter vectors ("variants": theta, theta + mu v, ...) and
returns each job's (return, steps) in job order:

- workers = 1: in this process, one episode after another (today's loop);
- workers = N > 1: this process plus N - 1 worker processes forked once,
  when the pool is made (after the task and the policy exist, before
  anything big), so they share the interpreter, NumPy, MuJoCo and the model
  copy-on-write and each holds only its own MjData pages, policy buffers
  and what its Python work touches (`fedzo bench rollout` measures it).

What crosses the pipes: per call, each variant once per worker (d float32
each), then jobs of three integers; back, (job, return, steps). A dispatcher
thread in this process hands every worker its next job as it answers, while the calling
thread runs episodes too (MuJoCo releases the GIL while it steps, so the
dispatcher answers at once).

A worker that dies (killed, out of memory) is reported through `log` and
counted in `deaths`; its unfinished jobs run elsewhere, so the round still
completes with the same results and the agent never hangs. A worker whose
episode raises sends the error back and the call raises RolloutError with it
(the pool is closed then: later calls run in this process).
"""
import gc
import os
import signal
import threading
from collections import deque

import numpy as np

from fedzo.edge.policy.rollout import run_episode

# Jobs sent to a worker before it answers. One: a round has few episodes (2·N·D, 4 by
# default), and a job queued at a busy worker can leave another process idle at the
# round's end, which costs far more than the worker's wait for its next job (a pipe
# round trip, well under a millisecond against an episode's tens).
AHEAD = 1


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_workers(workers) -> int:
    """`workers` as a positive int; ValueError with a clear message otherwise."""
    try:
        value = int(workers)
    except (TypeError, ValueError):
        raise ValueError(f"--workers must be a positive whole number, got {workers!r}") from None
    if value < 1 or value != workers:
        raise ValueError(f"--workers must be a positive whole number, got {workers!r}")
    return value


class RolloutError(RuntimeError):
    """An episode failed in a worker process (its message says which and why)."""


def _worker_main(conn, task, policy):
    """A worker's loop: variants and jobs in, results out, until told to stop or the pipe closes."""
    gc.freeze()        # the inherited objects stay out of collections: fewer pages copied
    variants, loaded = [], None
    try:
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                return
            if msg[0] == "variants":
                variants = [np.frombuffer(raw, np.float32) for raw in msg[1]]
                loaded = None
                continue
            _, job, variant, seed = msg
            try:
                if variant != loaded:
                    policy.load(variants[variant])
                    loaded = variant
                total, steps = run_episode(task, policy, seed)
            except Exception as exc:       # sent back whole: the parent raises it
                conn.send(("error", job, f"{type(exc).__name__}: {exc}"))
                continue
            conn.send(("done", job, total, steps))
    except (EOFError, OSError, KeyboardInterrupt):
        pass               # the agent is gone or closed the pool: nothing left to do


def _fork_worker(task, policy):
    """Fork one worker; (pid, the parent's end of its pipe).

    The child closes every descriptor but its pipe and stdio: it must not keep
    the agent's socket or serial port open, nor the pipes of other workers
    (else a worker would never see its own pipe close when the agent dies).
    """
    # imported here: an agent on one worker never pays for multiprocessing's modules
    import multiprocessing
    parent_end, child_end = multiprocessing.Pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: never returns
        code = 0
        try:
            keep = child_end.fileno()
            os.closerange(3, keep)
            os.closerange(keep + 1, _max_fd())
            _worker_main(child_end, task, policy)
        except BaseException:                      # noqa: BLE001 - a child must reach os._exit
            code = 1
        finally:
            os._exit(code)
    child_end.close()
    return pid, parent_end


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (AttributeError, ValueError, OSError):
        return 1 << 16


class _Worker:
    def __init__(self, index, pid, conn):
        self.index, self.pid, self.conn = index, pid, conn
        self.pending = []      # job indices sent, not yet answered
        self.status = None     # the wait status once reaped

    def reap(self, block=False) -> bool:
        """Collect the process's exit status if it has ended (or wait for it with `block`)."""
        if self.status is None:
            try:
                pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                pid, status = self.pid, 0
            if pid == self.pid:
                self.status = status
        return self.status is not None

    def describe_death(self) -> str:
        self.reap(block=True)       # its pipe closed: it has exited or is about to
        code = os.waitstatus_to_exitcode(self.status)
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return f"rollout worker {self.index} (pid {self.pid}) died ({how})"

    def stop(self):
        """End the process: ask, close the pipe, and make sure (a worker holds nothing to save)."""
        try:
            self.conn.send(("stop",))
        except OSError:
            pass
        self.conn.close()
        if not self.reap():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.reap(block=True)


class Rollouts:
    """Episodes under given parameter vectors, on `workers` processes (see the module docstring)."""

    def __init__(self, task, policy, workers=1, log=print):
        self.task, self.policy, self.log = task, policy, log
        self.workers = check_workers(workers)
        self.deaths = 0
        self._pool = []
        if self.workers > 1:
            # Objects alive now leave the collector's reach in this process too: a
            # collection would write to every one of them, copying the pages the
            # workers share with it.
            gc.freeze()
        for index in range(1, self.workers):
            pid, conn = _fork_worker(task, policy)
            self._pool.append(_Worker(index, pid, conn))

    @property
    def live_workers(self) -> int:
        """Processes running episodes now: this one plus the live forked workers."""
        return 1 + len(self._pool)

    def pids(self) -> list:
        """The forked workers' process ids (for memory figures and tests)."""
        return [w.pid for w in self._pool]

    def run(self, variants, jobs):
        """Run `jobs`, a list of (variant index, reset seed), under the float32 vectors
        `variants`; returns (returns, steps) arrays in job order. Afterwards the policy
        holds one of the variants: the caller loads theta back."""
        returns = np.empty(len(jobs))
        steps = np.zeros(len(jobs), np.int64)
        queue = deque(range(len(jobs)))
        lock = threading.Lock()
        if not self._pool or len(jobs) < 2:
            self._run_here(variants, jobs, queue, lock, returns, steps)
            return returns, steps
        failures = []
        raw = tuple(np.ascontiguousarray(v, np.float32).tobytes() for v in variants)
        for worker in list(self._pool):
            try:
                worker.conn.send(("variants", raw))
            except OSError:
                self._bury(worker, queue, lock)
        done = threading.Event()
        dispatcher = threading.Thread(target=self._dispatch_guarded, name="fedzo-rollout-dispatch", daemon=True,
                                      args=(jobs, queue, lock, returns, steps, failures, done))
        dispatcher.start()
        self._run_here(variants, jobs, queue, lock, returns, steps)
        done.set()
        dispatcher.join()
        if failures:
            self.close()        # no stale answers for the next call: this process runs the rest of the run
            raise RolloutError(failures[0])
        # jobs a dying worker held after this thread ran dry
        self._run_here(variants, jobs, queue, lock, returns, steps)
        if (steps == 0).any():               # every episode takes a step: a job never ran
            raise RolloutError(f"{int((steps == 0).sum())} of {len(jobs)} episodes got no result")
        return returns, steps

    def _run_here(self, variants, jobs, queue, lock, returns, steps):
        policy, task, loaded = self.policy, self.task, None
        while True:
            with lock:
                if not queue:
                    return
                job = queue.popleft()
            variant, seed = jobs[job]
            if variant != loaded:
                policy.load(variants[variant])
                loaded = variant
            returns[job], steps[job] = run_episode(task, policy, seed)

    def _dispatch_guarded(self, *args):
        """_dispatch, with a failure of its own reported to the caller rather than lost with the thread."""
        failures = args[5]
        try:
            self._dispatch(*args)
        except Exception as exc:        # noqa: BLE001 - raised by run() as RolloutError
            failures.append(f"the rollout dispatcher failed: {exc!r}")

    def _dispatch(self, jobs, queue, lock, returns, steps, failures, done):
        """Keep AHEAD jobs at every worker; collect results; re-queue a dead worker's jobs."""
        from multiprocessing.connection import wait

        def feed(worker):
            while len(worker.pending) < AHEAD:
                with lock:
                    if not queue:
                        return
                    job = queue.popleft()
                variant, seed = jobs[job]
                worker.pending.append(job)
                try:
                    worker.conn.send(("job", job, variant, int(seed)))
                except OSError:
                    self._bury(worker, queue, lock)
                    return

        for worker in list(self._pool):
            feed(worker)
        while True:
            busy = [w for w in self._pool if w.pending]
            if not busy:
                if done.is_set() or not queue:
                    return
                for worker in list(self._pool):
                    feed(worker)
                if not any(w.pending for w in self._pool):
                    return             # nothing left for the workers: this thread finishes the rest
                continue
            by_handle = {}
            for w in busy:
                by_handle[w.conn] = w      # readable on a message, and at EOF when it dies
            for handle in wait(list(by_handle)):
                worker = by_handle[handle]
                if worker not in self._pool:
                    continue
                try:
                    while worker.conn.poll():
                        msg = worker.conn.recv()
                        job = msg[1]
                        worker.pending.remove(job)
                        if msg[0] == "done":
                            returns[job], steps[job] = msg[2], msg[3]
                        else:
                            failures.append(f"rollout worker {worker.index}: episode with reset seed "
                                            f"{jobs[job][1]} failed: {msg[2]}")
                except (EOFError, OSError):
                    self._bury(worker, queue, lock)
                    continue
                if failures:
                    with lock:
                        queue.clear()     # the call raises; stop handing out work
                feed(worker)

    def _bury(self, worker, queue, lock):
        """A worker died: say so, count it, and hand its jobs back to the queue."""
        if worker not in self._pool:
            return
        self._pool.remove(worker)
        self.deaths += 1
        with lock:
            queue.extendleft(reversed(worker.pending))
        worker.pending = []
        worker.conn.close()
        self.log(f"{worker.describe_death()}; its episodes run on the {self.live_workers} process(es) "
                 f"left (the results do not change)")

    def close(self):
        """Stop the workers; this process alone runs episodes afterwards."""
        pool, self._pool = self._pool, []
        for worker in pool:
            worker.stop()

    def __del__(self):
        try:
            self.close()
        except Exception:   # noqa: BLE001 - interpreter shutdown: nothing to report to
            pass
