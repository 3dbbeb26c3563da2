"""SIGHUP: read the key directory and the revocation list again, and end revoked sessions.

The signal handler only raises a flag (`request`): a handler runs between two
bytecodes of whatever the main thread is doing, possibly in the middle of a
dispatch. The serving loop calls `poll` on every pass (Server.serve's check),
where the reload happens and the runtime's answer (Bye EXCLUDED and a close
for each agent whose key was revoked or replaced) is sent like any other.
"""
import signal
import threading

from fedzo.edge.protocol import Bye, ByeReason


class Reloader:
    """Reloads `book` (a KeyBook) when asked; `send(outputs)` hands the runtime's answer to the transport."""

    def __init__(self, book, runtime, send):
        self.book, self.runtime, self.send = book, runtime, send
        self.requested = False

    def request(self, *_signal_args) -> None:
        """Ask for a reload at the next pass (what the SIGHUP handler does, and all it does)."""
        self.requested = True

    def poll(self) -> None:
        """Reload if asked; end the sessions of agents whose keys no longer hold."""
        if not self.requested:
            return
        self.requested = False
        ended = self.book.reload()
        if not ended:
            return
        outputs = self.runtime.revoke(ended)
        self.book.disconnected += sum(1 for _, msg in outputs
                                      if isinstance(msg, Bye) and msg.code == ByeReason.EXCLUDED)
        self.send(outputs)

    def install(self) -> bool:
        """Make SIGHUP call `request`; False where it cannot (no SIGHUP, or not the main thread)."""
        if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
            return False
        signal.signal(signal.SIGHUP, self.request)
        return True
