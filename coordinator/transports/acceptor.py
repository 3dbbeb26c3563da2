"""Taking TCP connections off the listener: a crowd at once, and no spin when file descriptors run out.

A thousand agents that start together put a thousand connections in the
listen queue at once. `Acceptor.accept_ready()` takes up to ACCEPT_BATCH of
them per readiness event (the selector says the listener is readable once
per pass, so one accept a pass would take a thousand passes), and the
listen queue is asked for BACKLOG places (the kernel caps it at
net.core.somaxconn).

When the process (EMFILE) or the system (ENFILE) has no file descriptor
left, accept() fails while the connection stays queued, so the listener
stays readable and a loop that only retries would spin at full speed. The
acceptor then stops watching the listener for PAUSE_SECONDS (or until the
server closes a connection, `resume()`), says so once per process with the
limit and the way to raise it, and counts each pause (`pauses`). Queued
connections wait in the kernel meanwhile; none is lost by the pause.
"""
import errno
import resource
import selectors
import socket

ACCEPT_BATCH = 512        # connections taken per readiness event at most (the loop serves links between)
BACKLOG = 4096            # listen queue asked for; the kernel caps it at net.core.somaxconn
PAUSE_SECONDS = 0.5       # after EMFILE / ENFILE: the listener is not watched for this long
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def listen(address) -> socket.socket:
    """A non-blocking listening socket with a queue long enough for a fleet's burst."""
    sock = socket.create_server(address, reuse_port=False, backlog=BACKLOG)
    sock.setblocking(False)
    return sock


class Acceptor:
    """Accepts what the listener holds; pauses instead of spinning when descriptors run out."""

    def __init__(self, listener, selector, log=print):
        self.listener, self.selector, self.log = listener, selector, log
        self.paused_until = None      # monotonic time to watch the listener again, or None
        self.pauses = 0               # times accept() failed for want of a descriptor
        self.failures = 0             # other accept() failures (a connection reset while queued)
        self._said = False
        selector.register(listener, selectors.EVENT_READ, None)

    @property
    def paused(self) -> bool:
        return self.paused_until is not None

    def accept_ready(self, now: float) -> list:
        """The (socket, address) pairs waiting now, up to ACCEPT_BATCH (non-blocking sockets)."""
        out = []
        while len(out) < ACCEPT_BATCH and not self.paused:
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if exc.errno in OUT_OF_DESCRIPTORS:
                    self._pause(now, exc)
                else:
                    self.failures += 1    # that connection is gone; others may wait behind it
                continue
            sock.setblocking(False)
            out.append((sock, address))
        return out

    def tick(self, now: float) -> None:
        """Watch the listener again once a pause is over."""
        if self.paused and now >= self.paused_until:
            self.resume()

    def resume(self) -> None:
        """Watch the listener again (a descriptor was freed, or the pause is over)."""
        if self.paused:
            self.paused_until = None
            self.selector.register(self.listener, selectors.EVENT_READ, None)

    def close(self) -> None:
        if not self.paused:
            try:
                self.selector.unregister(self.listener)
            except (KeyError, ValueError):
                pass
        self.listener.close()

    def _pause(self, now: float, exc: OSError) -> None:
        self.pauses += 1
        self.paused_until = now + PAUSE_SECONDS
        self.selector.unregister(self.listener)
        if not self._said:
            self._said = True
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            which = "the system's" if exc.errno == errno.ENFILE else f"this process's (ulimit -n {soft}, hard {hard})"
            self.log(f"coordinator: cannot accept a connection: {exc.strerror or exc} ({which} limit of open "
                     f"files); new connections wait in the queue and are taken as descriptors free up, "
                     f"checked every {PAUSE_SECONDS} s (said once; counted as accept pauses)")
