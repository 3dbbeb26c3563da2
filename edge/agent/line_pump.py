"""One serial session's line, kept serviced while the agent waits for its person.

The serial agent does everything in one thread (serial.py): it reads the
port, acknowledges, then hands each message to its runtime. A round's
message returns only when the vote is computed, and with a person answering
(edge/human) that can take minutes. Meanwhile the ARQ must go on: what the
coordinator sends (its round result and next round start when the round
closes at its deadline, a Bye, a packet resent because an acknowledgement
was lost on the line) must be acknowledged, and this agent's own packets
resent, or one side gives the link up after its link timeout.

`LinePump` holds what the loop and the pump share: the endpoint, the bytes
not yet written (`outbox`) and the messages not yet handled (`inbox`). The
loop reads with `receive()` and handles the inbox in order. While the
person's source waits it calls the pump (`PreferenceSource.idle`, every
`POLL_SECONDS`): the pump drives the retransmission timer, reads what the
port has, acknowledges it at once and queues the whole messages it
completes, for the loop to handle after the comparison, in the order they
came. The pump handles no message itself: a RoundResult or a Bye taken in
the middle of a vote would change the state the vote is computed from.

A failure while pumping (the ARQ gave up, the port failed) is kept, not
raised: raised inside compare(), it would abandon the round half-way, and
the runtime's boundary would take it for a bad message. The loop raises it
with `check()` once the handler returns, and deals with it as with a
failure of its own.
"""
import time
from collections import deque

from fedzo.edge.links.serial_link import SerialLinkError
from fedzo.edge.protocol.errors import ProtocolError

# How often a waiting source pumps the line: well under the ARQ's timer (0.35 s
# at 115200 baud), so what arrives meanwhile is acknowledged before it is resent.
POLL_SECONDS = 0.05


class LinePump:
    """A session's endpoint and port, as the agent's loop and its pump share them."""

    def __init__(self, port_io, endpoint, log=print, clock=time.monotonic):
        self.port_io, self.endpoint, self.log, self.clock = port_io, endpoint, log, clock
        self.outbox = bytearray()         # bytes the port has not taken yet
        self.inbox = deque()              # messages received and not yet handled, oldest first
        self.failure = None               # what went wrong while pumping (raised by check())
        self.pumped = 0                   # bytes read by the pump
        self.source = None                # the preference source that pumps it (serve())

    def flush(self) -> None:
        """Write what the endpoint has to send, as far as the port takes it now."""
        self.outbox += self.endpoint.output()
        if self.outbox:
            del self.outbox[:self.port_io.write(self.outbox)]

    def receive(self) -> int:
        """Read what the port has now; acknowledge it at once and queue the messages it
        completes. The number of bytes read (0: nothing came)."""
        data = self.port_io.read()
        if not data:
            return 0
        self.inbox.extend(self.endpoint.feed(data, self.clock()))
        for error in self.endpoint.errors:
            self.log(f"agent: rejected a frame: {error}")
        self.endpoint.errors.clear()
        self.flush()                      # acknowledge before any work starts
        return len(data)

    def __call__(self) -> None:
        """Service the line once (the idle callback of a waiting source); never raises
        for the line's sake: a failure is kept for check()."""
        if self.failure is not None:
            return                        # the line is gone: the loop deals with it after the wait
        try:
            self.endpoint.tick(self.clock())
            self.pumped += self.receive()
            self.flush()
        except (ProtocolError, SerialLinkError) as exc:   # LinkFailed is a ProtocolError
            self.failure = exc

    def serve(self, source) -> None:
        """Let `source` (a PreferenceSource, or None) pump this line whenever it waits."""
        if source is not None:
            self.source = source
            source.idle, source.idle_every = self, POLL_SECONDS

    def release(self) -> None:
        """The session is over: its source stops pumping this line (the next has its own)."""
        if self.source is not None and self.source.idle is self:
            self.source.idle = None
        self.source = None

    def check(self) -> None:
        """Raise what went wrong while pumping, if anything did."""
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure
