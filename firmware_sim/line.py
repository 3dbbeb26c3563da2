"""A simulated serial cable: two pseudo-terminals and a pacer thread between them.

    agent  <->  pty A  <->  pacer (baud rate, faults)  <->  pty B  <->  coordinator
           agent_port                                 coordinator_port

Each side opens its pty's slave (a /dev/pts/N path) like any serial device,
with pyserial. The pacer reads what each side writes from the pty masters
and delivers it to the other side no faster than a UART at `baud`, 8N1: a
byte takes 10 bit times, and bytes queue behind each other. Delivery times
are computed from the clock, not from sleeps, so a late wake-up delivers the
bytes that became due at once and the long-run rate stays exact; a byte is
never delivered before its time.

Each direction holds at most `tx_buffer` bytes (the sending UART's buffer);
beyond that the pacer stops reading, the writer's pty fills and its writes
block, as they would on a board. The pacer also holds the slave ends open
itself, so a side that closes its port (an agent that exits) does not break
the line; a later process opening the port starts on a fresh buffer, as a
board that reboots does.

Faults (faults.py) are applied to bytes as they enter the line; a cut loses
everything on the line both ways for its duration. `disconnect(seconds)`
cuts the cable by hand, and `reconnect()` plugs it back in early.

A device spliced into the cable (an attacker, in the tests) is `tamper`:
tamper(direction, data) sees the bytes a side writes before they enter the
line ("up": the agent's, "down": the coordinator's) and returns what goes on
in their place (the same bytes, fewer, others, or none yet); `inject(direction,
data)` puts bytes of its own on the line. Both run in the pacer's pass.
"""
import errno
import os
import pty
import select
import threading
import time
import tty
from collections import deque

from fedzo.edge.links.serial_link import BITS_PER_BYTE, check_baud
from fedzo.firmware_sim.faults import FaultInjector, FaultSpec

TX_BUFFER_BYTES = 4096
READ_BYTES = 4096
MAX_SLEEP = 0.05


class _Direction:
    """One direction of the line: a queue of timed segments."""

    def __init__(self, name, src, dst, injector, byte_time, tx_buffer):
        self.name, self.src, self.dst = name, src, dst
        self.injector, self.byte_time, self.tx_buffer = injector, byte_time, tx_buffer
        self.segments = deque()     # [time the first byte is done - byte_time, bytearray]
        self.queued = 0             # bytes in segments
        self.line_free = 0.0        # when the line finishes the last queued byte
        self.out = bytearray()      # delivered, not yet taken by the destination pty
        self.stats = {"bytes_in": 0, "bytes_out": 0, "lost_in_cut": 0}

    @property
    def room(self) -> int:
        return self.tx_buffer - self.queued - len(self.out)

    def accept(self, data: bytes, now: float) -> bool:
        """Put bytes on the line; True if they cut the cable."""
        self.stats["bytes_in"] += len(data)
        segments, cut = self.injector.apply(data)
        for stall, chunk in segments:
            start = max(now, self.line_free) + stall
            if chunk:
                self.segments.append([start, bytearray(chunk)])
                self.queued += len(chunk)
                self.line_free = start + len(chunk) * self.byte_time
            else:
                self.line_free = start          # a stall with nothing before the next bytes
        return cut

    def deliver(self, now: float) -> None:
        """Move the bytes whose last bit has arrived to the output."""
        while self.segments:
            seg = self.segments[0]
            start, chunk = seg
            n = min(len(chunk), int((now - start) / self.byte_time))
            if n <= 0:
                return
            self.out += chunk[:n]
            del chunk[:n]
            self.queued -= n
            seg[0] = start + n * self.byte_time
            if chunk:
                return
            self.segments.popleft()

    def next_due(self) -> float | None:
        """When the next byte completes (None: nothing queued)."""
        return self.segments[0][0] + self.byte_time if self.segments else None

    def drop_all(self, now: float) -> None:
        """Lose everything on the line (a cut)."""
        self.stats["lost_in_cut"] += self.queued
        self.segments.clear()
        self.queued = 0
        self.line_free = now


class SerialLine:
    """A paced, optionally faulty serial cable between two pseudo-terminals."""

    def __init__(self, baud: int, faults: FaultSpec | None = None, *, index: int = 0, name: str = "",
                 tx_buffer: int = TX_BUFFER_BYTES):
        self.baud = check_baud(baud)
        self.faults = faults or FaultSpec()
        self.name = name or f"line-{index}"
        self.byte_time = BITS_PER_BYTE / baud
        self._fds = []
        a_master, a_slave = self._openpty()
        c_master, c_slave = self._openpty()
        self.agent_port = os.ttyname(a_slave)
        self.coordinator_port = os.ttyname(c_slave)
        self._dirs = [
            _Direction("up", a_master, c_master, FaultInjector(self.faults, index, "up"), self.byte_time,
                       tx_buffer),
            _Direction("down", c_master, a_master, FaultInjector(self.faults, index, "down"),
                       self.byte_time, tx_buffer),
        ]
        self._lock = threading.RLock()     # re-entered by inject() from tamper()
        self.tamper = None
        self._injected = {"up": bytearray(), "down": bytearray()}
        self._cut_until = 0.0
        self.cuts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pacer-{self.name}", daemon=True)
        self.error = None

    def _openpty(self):
        master, slave = pty.openpty()
        self._fds += [master, slave]
        tty.setraw(slave)               # no echo, no line editing: a byte pipe
        os.set_blocking(master, False)
        return master, slave

    # -- control --------------------------------------------------------------

    def start(self) -> "SerialLine":
        """Start the pacer thread."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the pacer and close the pseudo-terminals."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def disconnect(self, seconds: float) -> None:
        """Cut the cable now for `seconds`: everything on it, both ways, is lost."""
        with self._lock:
            self._cut(time.monotonic(), seconds)

    def reconnect(self) -> None:
        """End a cut now: the cable is plugged back in."""
        with self._lock:
            self._cut_until = 0.0

    def inject(self, direction: str, data: bytes) -> None:
        """Put bytes on the line in `direction` ("up" or "down") at the next pass."""
        with self._lock:
            self._injected[direction] += data

    def _cut(self, now, seconds):
        self.cuts += 1
        self._cut_until = max(self._cut_until, now + seconds)
        for d in self._dirs:
            d.drop_all(now)

    @property
    def cut(self) -> bool:
        """True while the cable is cut."""
        return time.monotonic() < self._cut_until

    def stats(self) -> dict:
        """What the line carried and did, per direction, with wire time at its baud rate."""
        with self._lock:
            out = {"baud": self.baud, "faults": str(self.faults), "cuts": self.cuts}
            for d in self._dirs:
                s = dict(d.stats, **d.injector.stats)
                s.pop("bytes", None)
                s["wire_seconds"] = s["bytes_out"] * self.byte_time
                out[d.name] = s
            return out

    # -- the pacer ------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._pass()
        except Exception as exc:   # noqa: BLE001 - reported by the owner, never silent
            self.error = exc
            raise

    def _pass(self) -> None:
        now = time.monotonic()
        rlist = [d.src for d in self._dirs if d.room > 0]
        wlist = [d.dst for d in self._dirs if d.out]
        dues = [t for t in (d.next_due() for d in self._dirs) if t is not None]
        timeout = MAX_SLEEP if not dues else min(MAX_SLEEP, max(0.0, min(dues) - now))
        if wlist:
            timeout = min(timeout, 0.005)   # a full pty frees space without telling select reliably
        readable, writable, _ = select.select(rlist, wlist, [], timeout)
        now = time.monotonic()
        with self._lock:
            for d in self._dirs:
                data = self._read(d.src, d.room) if d.src in readable else b""
                if self.tamper is not None:
                    data = self.tamper(d.name, data)
                if self._injected[d.name]:
                    data, self._injected[d.name] = bytes(data) + bytes(self._injected[d.name]), bytearray()
                if not data:
                    continue
                if now < self._cut_until:
                    d.stats["bytes_in"] += len(data)
                    d.stats["lost_in_cut"] += len(data)
                elif d.accept(data, now):
                    self._cut(now, self.faults.disconnect_s)
            for d in self._dirs:
                d.deliver(now)
                if d.out:
                    n = self._write(d.dst, d.out)
                    d.stats["bytes_out"] += n
                    del d.out[:n]

    @staticmethod
    def _read(fd, n) -> bytes:
        try:
            return os.read(fd, n)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:      # no slave open (cannot happen: we hold them)
                return b""
            raise

    @staticmethod
    def _write(fd, data) -> int:
        try:
            return os.write(fd, data)
        except (BlockingIOError, InterruptedError):
            return 0
