"""Waiting for events in tests, never for a stretch of time.

A test that sleeps to let something happen, or gives healthy work a short
deadline, fails on a loaded machine. These helpers poll for the condition
itself, with a limit far above what it takes even then: the limit only stops
a test that would otherwise hang.
"""
import time

PATIENCE = 120.0       # seconds: the default limit of a wait


def wait_until(condition, what: str, timeout: float = PATIENCE, interval: float = 0.01):
    """Poll condition() until it returns something true, and return that.

    AssertionError naming `what` if it is still false after `timeout` seconds.
    """
    limit = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > limit:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(interval)
