"""`fedzo agent` over TCP: connect, join, answer rounds, reconnect when the link drops.

The agent never hangs: connecting, and waiting for the coordinator, both have
time limits; when the coordinator goes away mid-run the agent reconnects
(with its id, round and theta hash, so it is resynced if needed) until
`reconnect_seconds` pass without an answer (reconnect.py: a connection
that is closed before a welcome is a failed attempt, not an answer). Bye
REPLACED or TIMEOUT ends a session, not the run: the agent joins again on a
new connection; after Error ID_IN_USE (another live session holds its id) it
waits a little longer each time before it does. A refusal (refused.py)
ends the agent with AgentRefused. A wait longer than a few seconds says
what it waits for (waits.py).
"""
import select
import socket
import time

from fedzo.edge.agent.boundary import MessageRefused, take
from fedzo.edge.agent.reconnect import DEFAULT_RECONNECT_SECONDS, Reconnect, in_use_delay
from fedzo.edge.agent.runtime import AgentRefused, AgentRuntime
from fedzo.edge.agent.waits import FIRST_NOTE_SECONDS, WaitNotes
from fedzo.edge.links.address import parse_address
from fedzo.edge.protocol import AGENT, Endpoint, LinkCounters, ProtocolError, Session, Welcome

RECV_BYTES = 65536
CONNECT_SECONDS = 10.0


def run_agent_tcp(address, run_key: bytes, runtime: AgentRuntime, *, idle_timeout=900.0,
                  reconnect_seconds=DEFAULT_RECONNECT_SECONDS, log=print) -> LinkCounters:
    """Take part in a run until it ends; returns this agent's link counters.

    Raises AgentRefused (refused, or its memory budget is too small) or
    AgentGaveUp (no answer from the coordinator within reconnect_seconds).
    """
    host, port = parse_address(address) if isinstance(address, str) else address
    counters = LinkCounters("agent")
    # One Session for every connection: it keeps the last session's rejoin
    # secret, which lets this agent's next Join take back its id at once.
    session = Session(AGENT, run_key, counters=counters)
    reconnect = Reconnect(reconnect_seconds, f"{host}:{port}", log)
    notes = WaitNotes(log)
    while not runtime.done:
        try:
            sock = socket.create_connection((host, port), timeout=CONNECT_SECONDS)
        except OSError as exc:
            reconnect.failed(_why(exc))
            continue
        with sock:
            # Each answer goes out in one write (_serve), so Nagle's wait for an ACK would
            # only delay it; with the delay off a round's answer is one segment (DECISIONS.md,
            # "Fewer packets per round").
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            endpoint = Endpoint(session)
            welcomed = []                    # set once this connection's session is established
            try:
                ended = _serve(sock, endpoint, runtime, reconnect, notes, idle_timeout, welcomed)
            except AgentRefused as exc:
                for msg in exc.goodbye():
                    sock.sendall(endpoint.send(msg))
                raise
            except (OSError, ProtocolError) as exc:
                ended = f"link lost ({exc})"
        if runtime.done:
            break
        if runtime.in_use_refusals:
            time.sleep(in_use_delay(runtime.in_use_refusals))
        elif welcomed:
            reconnect.lost(ended)
        else:
            reconnect.failed(ended)          # no back-off reset, no give-up clock reset
    return counters


def _why(exc: OSError) -> str:
    """A short reason for a failed connect: 'connection refused', 'timed out', ..."""
    if isinstance(exc, socket.timeout):
        return f"no answer to connect within {CONNECT_SECONDS:.0f} s"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def _serve(sock, endpoint, runtime, reconnect, notes, idle_timeout, welcomed) -> str:
    """One connection: hello and join, then answer messages until it closes, the run
    ends or the coordinator ends the session (Bye REPLACED/TIMEOUT: join again).
    Returns how it ended (for the log); appends to `welcomed` once established."""
    sock.settimeout(idle_timeout)              # sends too: a busy coordinator may read late
    sock.sendall(endpoint.send(runtime.hello()))
    notes.progress()
    silent_since = time.monotonic()
    while not runtime.done:
        # Wake up now and then to say what we wait for (waits.py).
        if not select.select([sock], [], [], FIRST_NOTE_SECONDS)[0]:
            if time.monotonic() - silent_since > idle_timeout:
                return f"nothing from the coordinator for {idle_timeout:.0f} s"
            notes.tick(runtime.waiting_for())
            continue
        try:
            data = sock.recv(RECV_BYTES)
        except ConnectionResetError:
            # A coordinator that closes while our Hello is unread resets the connection:
            # the same event as a close, whichever of the two the kernel reports.
            data = b""
        if not data:
            return ("the coordinator closed the connection"
                    + ("" if endpoint.session.established else " before welcoming this agent"))
        messages = endpoint.feed(data)
        if messages:
            silent_since = time.monotonic()
            reconnect.heard()
            notes.progress()
        for msg in messages:
            if isinstance(msg, Welcome) and not welcomed:
                welcomed.append(True)
                reconnect.welcomed()
            try:
                replies = take(runtime, msg, endpoint.counters)
            except MessageRefused as exc:
                # Say why, close this connection and join again (a fresh Welcome).
                sock.sendall(endpoint.send(exc.reply))
                return str(exc)
            if replies:
                # One write for all of a message's answers (FedAvg: the model chunks and the vote).
                sock.sendall(b"".join(endpoint.send(reply) for reply in replies))
            if runtime.rejoin:
                return "the coordinator ended this session"
    return "the run is over"
