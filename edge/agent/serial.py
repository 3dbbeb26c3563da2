"""`fedzo agent --serial PORT`: take part in a run over a serial line.

The serial twin of tcp.py. A serial line has no connection to
lose, so the agent learns that the link is gone in one of three ways: its
ARQ gets no acknowledgement for `link_timeout` seconds; the coordinator,
whose own ARQ gave up while this agent had nothing to send, says
Bye(TIMEOUT) once the line works again (Bye REPLACED, too, means join
again; any other Bye ends the run); or
nothing at all arrives for `idle_timeout` seconds while it waits for the
coordinator (a coordinator that was restarted). Then the agent joins again on the same port, with its id, round
and theta hash, so the coordinator resyncs it if needed. If the port itself
fails (a USB adapter pulled out), it is reopened. The agent never hangs: it
gives up with AgentGaveUp when `reconnect_seconds` pass after a loss (or
after starting) without a single valid message from the coordinator; a
session that ends without a welcome, or a port that does not open, is a
failed attempt with a growing back-off and a rate-limited line
(reconnect.py). A refusal ends the agent with AgentRefused (refused.py); a
wait longer than a few seconds says what it waits for (waits.py).

One thread does everything. Received bytes are acknowledged before the
messages they complete are handled, so a long rollout does not make the
coordinator retransmit what already arrived. While a person chooses
(--human), the person's source pumps the line (line_pump.py): what arrives
is acknowledged at once and its messages wait in the session's inbox,
handled in order once the vote is sent.
"""
import json
import time

from fedzo.edge.agent.boundary import MessageRefused, take
from fedzo.edge.agent.line_pump import LinePump
from fedzo.edge.agent.reconnect import DEFAULT_RECONNECT_SECONDS, Reconnect, in_use_delay
from fedzo.edge.agent.runtime import AgentRefused, AgentRuntime
from fedzo.edge.agent.waits import WaitNotes
from fedzo.edge.links.serial_link import (
    DEFAULT_BAUD,
    DEFAULT_FRAGMENT_BYTES,
    DEFAULT_LINK_TIMEOUT,
    PortIO,
    SerialEndpoint,
    SerialLinkError,
    check_baud,
    check_fragment,
    make_arq,
    wire_seconds,
)
from fedzo.edge.protocol import (
    AGENT,
    MAX_FRAME_BYTES,
    Bye,
    ByeReason,
    LinkCounters,
    LinkFailed,
    Session,
    Welcome,
)
from fedzo.edge.protocol.arq import ARQ_STAT_KEYS
from fedzo.edge.protocol.errors import ProtocolError

POLL_SECONDS = 0.05
# Silence after which a session counts as lost. A needless rejoin costs a
# Join and a Welcome (under 1 KB), so this can be far shorter than TCP's.
IDLE_SECONDS = 300.0
# How long a joining agent waits for its Welcome before it joins again, on top of
# twice the line time of a largest frame. A Welcome lost for good (the
# coordinator gave up on the line meanwhile) would otherwise cost IDLE_SECONDS:
# what the coordinator sends next is sealed with keys this agent never got.
WELCOME_SECONDS = 10.0


class SerialAgentStats:
    """What an agent's serial link carried, over all its sessions."""

    def __init__(self, port: str, baud: int):
        self.port, self.baud = port, baud
        self.counters = LinkCounters("agent")
        self.arq = dict.fromkeys(ARQ_STAT_KEYS, 0)
        self.sessions = 0
        self.link_failures = 0     # sessions ended by the ARQ giving up
        self.port_errors = 0       # times the port failed and was reopened

    def add_arq(self, stats: dict) -> None:
        """Add one session's ARQ counts."""
        for key in ARQ_STAT_KEYS:
            self.arq[key] += stats.get(key, 0)

    def to_dict(self) -> dict:
        """JSON-ready: the link counters, the ARQ totals and the session counts."""
        return {"transport": "serial", "port": self.port, "baud": self.baud,
                "sessions": self.sessions, "link_failures": self.link_failures,
                "port_errors": self.port_errors, "arq": dict(self.arq),
                "counters": self.counters.to_dict()}

    def write(self, path) -> None:
        """Write to_dict() as JSON to path."""
        with open(path, "w") as f:
            json.dump(self.to_dict(), f)


def run_agent_serial(port: str, run_key: bytes, runtime: AgentRuntime, *, baud: int = DEFAULT_BAUD,
                     fragment: int = DEFAULT_FRAGMENT_BYTES, link_timeout: float = DEFAULT_LINK_TIMEOUT,
                     idle_timeout: float = IDLE_SECONDS,
                     reconnect_seconds: float = DEFAULT_RECONNECT_SECONDS,
                     welcome_timeout: float | None = None,
                     log=print) -> SerialAgentStats:
    """Take part in a run over the serial port until it ends; returns the link's figures.

    Raises AgentRefused (the agent cannot take part), AgentGaveUp (no
    coordinator within reconnect_seconds) or ValueError (bad settings).
    """
    check_baud(baud)
    check_fragment(fragment)
    if not link_timeout > 0 or not reconnect_seconds > 0 or not idle_timeout > 0:
        raise ValueError("link_timeout, idle_timeout and reconnect_seconds must be positive")
    if welcome_timeout is None:
        welcome_timeout = welcome_wait(baud)
    stats = SerialAgentStats(port, baud)
    # One Session for every session on the line: it keeps the last session's
    # rejoin secret, which lets this agent's next Join take back its id at once.
    session = Session(AGENT, run_key, counters=stats.counters)
    reconnect = Reconnect(reconnect_seconds, port, log)
    notes = WaitNotes(log)
    while not runtime.done:
        try:
            port_io = PortIO(port, baud)
        except SerialLinkError as exc:
            reconnect.failed(str(exc))
            continue
        try:
            while not runtime.done:
                unwelcomed = _session(port_io, session, runtime, stats, reconnect, notes, baud=baud,
                                      fragment=fragment, link_timeout=link_timeout,
                                      idle_timeout=idle_timeout, welcome_timeout=welcome_timeout, log=log)
                if runtime.in_use_refusals and not runtime.done:
                    time.sleep(in_use_delay(runtime.in_use_refusals))
                elif unwelcomed and not runtime.done:
                    reconnect.failed(unwelcomed)     # gives up in time; a line now and then
        except SerialLinkError as exc:
            stats.port_errors += 1
            log(f"agent: {exc}; reopening the port")
            reconnect.failed(str(exc))
        finally:
            port_io.close()
    return stats


def welcome_wait(baud: int) -> float:
    """Seconds a joining agent waits for its Welcome (see WELCOME_SECONDS)."""
    return WELCOME_SECONDS + 2 * wire_seconds(MAX_FRAME_BYTES, baud)


def _session(port_io, session, runtime, stats, reconnect, notes, *, baud, fragment, link_timeout,
             idle_timeout, welcome_timeout, log):
    """One session: join, then answer messages until the link is lost or the run ends.

    Returns why it ended if it ended without a welcome (a failed attempt), else None."""
    arq = make_arq(baud, fragment=fragment, link_timeout=link_timeout)
    endpoint = SerialEndpoint(session, arq, fragment=fragment)
    line = LinePump(port_io, endpoint, log)
    stats.sessions += 1
    last_message = time.monotonic()
    linger_until = None
    heard = False
    welcomed = False
    try:
        line.serve(runtime.preference)     # a person's source pumps the line while it waits
        endpoint.send(runtime.hello(), time.monotonic())
        notes.progress()
        welcome_by = time.monotonic() + welcome_timeout
        while True:
            now = time.monotonic()
            endpoint.tick(now)
            line.flush()
            if not endpoint.session.established and now > welcome_by:
                return f"no welcome within {welcome_timeout:.0f} s"
            if runtime.done:
                # Stay a moment to acknowledge a retransmitted Bye (our ack may be lost).
                linger_until = linger_until or now + min(2.0, 3 * arq.rto)
                if now >= linger_until:
                    return
            if not line.inbox:           # what the pump queued meanwhile goes first
                port_io.wait(POLL_SECONDS, want_write=bool(line.outbox))
                if not line.receive():   # (it acknowledges before the work starts)
                    if time.monotonic() - last_message > idle_timeout:
                        log(f"agent: nothing from the coordinator for {idle_timeout:.0f} s; rejoining")
                        return None if welcomed else "nothing from the coordinator"
                    notes.tick(runtime.waiting_for())
                    continue
            while line.inbox:
                msg = line.inbox.popleft()
                reconnect.heard()
                notes.progress()
                heard = True
                if isinstance(msg, Welcome) and not welcomed:
                    welcomed = True
                    reconnect.welcomed()
                if isinstance(msg, Bye) and msg.code == ByeReason.TIMEOUT:
                    # The coordinator gave up on this link while we were quiet: the
                    # run goes on, so join again rather than end.
                    stats.link_failures += 1
                    log(f"agent: the coordinator lost this link ({msg.text}); joining again")
                    return None
                try:
                    replies = take(runtime, msg, stats.counters)
                except AgentRefused as exc:
                    _refuse(endpoint, port_io, exc)
                    raise
                except MessageRefused as exc:
                    # Say why and join again (a fresh Welcome, and a Sync if needed).
                    log(f"agent: {exc}; joining again")
                    endpoint.send(exc.reply, time.monotonic())
                    line.flush()
                    return None
                line.check()             # the line failed while a person was choosing
                for reply in replies:
                    endpoint.send(reply, time.monotonic())
                line.flush()
                # Silence counts from here: the time taken by this message (a person
                # choosing) was this agent's, not a sign the coordinator went away.
                last_message = time.monotonic()
                notes.progress()
                if runtime.rejoin:       # Bye(REPLACED): this session is over, the run is not
                    return None
    except LinkFailed as exc:
        stats.link_failures += 1
        if welcomed:
            log(f"agent: serial link lost ({exc}); joining again")
            return None
        return f"no acknowledgement from the coordinator ({exc})"
    except ProtocolError as exc:        # e.g. sending after the session closed
        log(f"agent: session ended ({exc}); joining again")
        return None
    finally:
        line.release()
        stats.add_arq(arq.stats)
        if heard and not runtime.done:
            reconnect.heard()              # the time to give up counts from the loss


def _refuse(endpoint, port_io, exc, seconds=3.0):
    """Tell the coordinator why we leave (best effort, a few seconds at most)."""
    try:
        now = time.monotonic()
        for msg in exc.goodbye():
            endpoint.send(msg, now)
        outbox = bytearray()
        deadline = now + seconds
        while time.monotonic() < deadline and not (endpoint.idle and not outbox):
            now = time.monotonic()
            endpoint.tick(now)
            outbox += endpoint.output()
            del outbox[:port_io.write(outbox)]
            port_io.wait(POLL_SECONDS, want_write=bool(outbox))
            endpoint.feed(port_io.read(), time.monotonic())
    except (ProtocolError, SerialLinkError):
        pass
