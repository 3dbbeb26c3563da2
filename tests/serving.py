"""A coordinator Server serving in a thread, for the transport tests."""
import threading

from waiting import PATIENCE


class Stop(Exception):
    """Raised by a check() to end serve() once a test has seen what it waits for."""


def serve_in_thread(server, check=None):
    """server.serve() in a thread (check() runs in it on every pass; it may raise
    Stop to end the serving early); returns (thread, errors)."""
    errors = []

    def target():
        try:
            server.serve(stop_after=2 * PATIENCE, check=check)
        except Stop:
            pass
        except Exception as exc:   # surfaced by the test
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors
