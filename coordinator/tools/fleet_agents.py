"""Many protocol agents in one process, for `fedzo bench fleet`: one selector loop, real sockets.

Each agent is a real protocol peer over its own loopback TCP connection: its
own Session (Hello, Challenge, Join with an X25519 share, Welcome, HMAC tags,
sequence numbers), length-prefixed frames, and a vote per round. What it
skips is the work the coordinator never sees: no rollouts (its vote comes
from the round and its block) and no replica of theta. It votes with the
theta hash the coordinator last sent it (the Welcome's, then each round
result's), which is the hash a replica in step would hold; a replica would
cost n agents n x K kernel updates a round in the bench's few processes, and
the coordinator's side is the same either way.

An agent whose connection closes before its Welcome (refused, or the
coordinator not listening yet) connects again after a short wait
(RETRY_SECONDS); the retries are counted and reported.
"""
import errno
import selectors
import socket
import time

from fedzo.edge.protocol import AGENT, Endpoint, ProtocolError, Session
from fedzo.edge.protocol import messages as m

RETRY_SECONDS = 0.2
RECV_BYTES = 65536


class FleetAgent:
    """One agent's side of a run: messages in, replies out (see the module docstring)."""

    def __init__(self, key: bytes, rounds: int):
        self.key, self.rounds = key, rounds
        self.block = None
        self.theta_hash = None
        self.done = False
        self.welcomed = False
        self.sock = self.endpoint = None
        self.outbox = bytearray()
        self.retry_at = None
        self.retries = 0

    def handle(self, msg) -> list:
        """The replies to one message from the coordinator."""
        if isinstance(msg, m.Challenge):
            return [m.Join(capabilities=m.Capabilities())]
        if isinstance(msg, m.Welcome):
            self.welcomed, self.block, self.theta_hash = True, msg.block, msg.theta_hash
            return [m.Report(round=msg.round)] if msg.round >= self.rounds else []
        if isinstance(msg, m.Sync):
            self.theta_hash = msg.theta_hash          # the whole vector's hash, in every chunk
            return []
        if isinstance(msg, m.RoundStart):
            return [self._vote(msg.round)]
        if isinstance(msg, m.RoundResultNext):
            self.theta_hash = msg.theta_hash
            return [self._vote(msg.next_round)]
        if isinstance(msg, m.RoundResult):
            self.theta_hash = msg.theta_hash
            return [m.Report(round=msg.round + 1)] if msg.round + 1 >= self.rounds else []
        if isinstance(msg, m.Bye) and msg.code not in (m.ByeReason.REPLACED, m.ByeReason.TIMEOUT):
            self.done = True
        return []

    def _vote(self, round_: int):
        return m.Vote(round_, 1 if (round_ + self.block) % 3 else -1, self.theta_hash)


class Fleet:
    """`count` FleetAgents connected to `address`, served by one selector loop."""

    def __init__(self, address, key: bytes, count: int, rounds: int):
        self.address = tuple(address)
        self.agents = [FleetAgent(key, rounds) for _ in range(count)]
        self.selector = selectors.DefaultSelector()
        self.rejected = 0           # frames this fleet's sessions refused

    @property
    def retries(self) -> int:
        return sum(a.retries for a in self.agents)

    def run(self, limit_seconds: float) -> None:
        """Connect every agent at once, then serve them until each is told the run is over."""
        for agent in self.agents:
            self._connect(agent)
        deadline = time.monotonic() + limit_seconds
        while not all(a.done for a in self.agents):
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"{sum(not a.done for a in self.agents)} agents still running "
                                   f"after {limit_seconds:.0f} s")
            for key, events in self.selector.select(timeout=RETRY_SECONDS):
                agent = key.data
                if events & selectors.EVENT_READ:
                    self._read(agent)
                if events & selectors.EVENT_WRITE and agent.sock is not None:
                    self._flush(agent)
            for agent in self.agents:
                if agent.retry_at is not None and now >= agent.retry_at:
                    self._connect(agent)
        self.selector.close()

    def _connect(self, agent) -> None:
        agent.retry_at = None
        sock = socket.socket()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex(self.address)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self._lost(agent, count=True)
            return
        agent.sock, agent.outbox = sock, bytearray()
        agent.endpoint = Endpoint(Session(AGENT, agent.key))
        agent.welcomed = False
        agent.outbox += agent.endpoint.send(m.Hello())
        self.selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, agent)

    def _lost(self, agent, count: bool) -> None:
        if agent.sock is not None:
            self.selector.unregister(agent.sock)
            agent.sock.close()
            agent.sock = None
        if not agent.done:
            agent.retries += count
            agent.retry_at = time.monotonic() + RETRY_SECONDS

    def _read(self, agent) -> None:
        data = _receive(agent.sock)
        if data is None:
            return
        if not data:
            self._lost(agent, count=not agent.welcomed)
            return
        try:
            messages = agent.endpoint.feed(data)
        except ProtocolError:
            self._lost(agent, count=True)
            return
        self.rejected += len(agent.endpoint.errors)
        agent.endpoint.errors.clear()
        replies = []
        for msg in messages:
            replies += agent.handle(msg)
        if replies:
            agent.outbox += b"".join(agent.endpoint.send(r) for r in replies)   # one write
            self._flush(agent)
        if agent.done and agent.sock is not None:
            self._lost(agent, count=False)

    def _flush(self, agent) -> None:
        try:
            sent = agent.sock.send(agent.outbox) if agent.outbox else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._lost(agent, count=not agent.welcomed)
            return
        del agent.outbox[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if agent.outbox else 0)
        self.selector.modify(agent.sock, events, agent)


def _receive(sock):
    """What the socket holds: bytes, b"" at its end (or an error), None if nothing yet."""
    try:
        return sock.recv(RECV_BYTES)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""
