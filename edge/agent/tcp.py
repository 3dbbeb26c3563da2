"""`fedzo agent` over TCP: connect, join, answer rounds, reconnect when the link drops.

The agent never hangs: connecting, and waiting for the coordinator, both have
time limits; when the coordinator goes away mid-run the agent reconnects
(with its id, round and theta hash, so it is resynced if needed) until
`reconnect_seconds` pass without success. Bye REPLACED or TIMEOUT ends a
session, not the run: the agent joins again on a new connection; after
Error ID_IN_USE (another live session holds its id) it waits a little
longer each time before it does.
"""
import socket
import time

from fedzo.edge.agent.boundary import MessageRefused, take
from fedzo.edge.agent.reconnect import DEFAULT_RECONNECT_SECONDS, AgentGaveUp, Reconnect, in_use_delay
from fedzo.edge.agent.runtime import AgentRefused, AgentRuntime
from fedzo.edge.links.address import parse_address
from fedzo.edge.protocol import AGENT, Endpoint, LinkCounters, ProtocolError, Session

RECV_BYTES = 65536


def run_agent_tcp(address, run_key: bytes, runtime: AgentRuntime, *, idle_timeout=900.0,
                  reconnect_seconds=DEFAULT_RECONNECT_SECONDS, log=print) -> LinkCounters:
    """Take part in a run until it ends; returns this agent's link counters."""
    host, port = parse_address(address) if isinstance(address, str) else address
    counters = LinkCounters("agent")
    # One Session for every connection: it keeps the last session's rejoin
    # secret, which lets this agent's next Join take back its id at once.
    session = Session(AGENT, run_key, counters=counters)
    reconnect = Reconnect(reconnect_seconds)
    while not runtime.done:
        try:
            sock = socket.create_connection((host, port), timeout=10)
        except OSError as exc:
            if reconnect.expired():
                raise AgentGaveUp(f"cannot reach the coordinator at {host}:{port}: {exc}") from exc
            reconnect.back_off()
            continue
        reconnect.connected()
        with sock:
            sock.settimeout(idle_timeout)
            endpoint = Endpoint(session)
            try:
                _serve(sock, endpoint, runtime, log)
            except AgentRefused as exc:
                for msg in exc.goodbye():
                    sock.sendall(endpoint.send(msg))
                raise
            except (OSError, ProtocolError) as exc:
                log(f"agent: link lost ({exc}); reconnecting")
        reconnect.heard()              # the time to give up counts from the loss
        if runtime.in_use_refusals and not runtime.done:
            time.sleep(in_use_delay(runtime.in_use_refusals))
    return counters


def _serve(sock, endpoint, runtime, log):
    """One connection: hello and join, then answer messages until it closes,
    the run ends or the coordinator ends the session (Bye REPLACED/TIMEOUT: join again)."""
    sock.sendall(endpoint.send(runtime.hello()))
    while not runtime.done:
        data = sock.recv(RECV_BYTES)
        if not data:
            if not runtime.done:
                log("agent: the coordinator closed the connection")
            return
        for msg in endpoint.feed(data):
            try:
                replies = take(runtime, msg, endpoint.counters)
            except MessageRefused as exc:
                # Say why, close this connection and join again (a fresh Welcome).
                log(f"agent: {exc}; reconnecting")
                sock.sendall(endpoint.send(exc.reply))
                return
            for reply in replies:
                sock.sendall(endpoint.send(reply))
            if runtime.rejoin:
                return
