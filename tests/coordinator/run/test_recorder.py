"""The Recorder: a run's after-round jobs in order, on a worker thread, failures handed back."""
import threading

import pytest
from waiting import PATIENCE

from fedzo.coordinator.run.recorder import Recorder


def test_background_jobs_run_in_order_on_another_thread_and_wait_returns_when_all_are_done():
    recorder = Recorder(background=True)
    gate, done, threads = threading.Event(), [], set()

    def job(i):
        def run():
            if i == 0:
                assert gate.wait(PATIENCE)          # the first job holds the others back
            threads.add(threading.get_ident())
            done.append(i)
        return run

    for i in range(5):
        recorder.submit(job(i))                     # returns at once: job 0 is still waiting
    assert done == [] and not recorder.idle and not recorder.settled
    gate.set()
    assert recorder.wait(PATIENCE)
    assert done == [0, 1, 2, 3, 4] and recorder.idle and recorder.settled
    assert threads and threading.get_ident() not in threads
    recorder.close()


def test_the_first_failure_drops_the_jobs_after_it_and_is_raised_in_the_callers_thread():
    recorder = Recorder(background=True)
    gate, done = threading.Event(), []

    def fail():
        assert gate.wait(PATIENCE)
        raise OSError(28, "No space left on device")

    recorder.submit(lambda: done.append(0))
    recorder.submit(fail)
    recorder.submit(lambda: done.append(2))         # queued behind the failure: never runs
    recorder.check()                                # nothing has failed yet
    gate.set()
    with pytest.raises(OSError, match="No space left"):
        recorder.wait(PATIENCE)
    with pytest.raises(OSError, match="No space left"):
        recorder.check()
    recorder.submit(lambda: done.append(3))         # dropped too: the record stopped at the failure
    assert done == [0] and recorder.idle and not recorder.settled


def test_without_background_a_job_runs_at_once_and_raises_to_its_caller():
    recorder = Recorder()
    done = []
    recorder.submit(lambda: done.append(threading.get_ident()))
    assert done == [threading.get_ident()] and recorder.settled
    with pytest.raises(ZeroDivisionError):
        recorder.submit(lambda: 1 / 0)
    assert recorder.wait(0)
