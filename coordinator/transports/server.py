"""The coordinator's transports: TCP agents and serial ports in one selector loop.

One thread, one selector. TCP: a listener accepts agents; each connection is
a `TcpLink` with a length-prefix Endpoint. Serial: each port (a device or a
pyserial URL) is a `SerialPort` with a SerialEndpoint (fragments + ARQ, see
edge/links/serial_link.py); ports with a file descriptor join the selector, the
others are polled every pass. Every pass also drives the ARQ timers and the
runtime's deadlines, so a serial retransmission never waits for traffic.

The runtime (coordinator/rounds/runtime.py) sees "links": a TcpLink per TCP
connection, and a `SerialSession` per agent session on a serial port. A
serial port outlives its sessions: when the runtime closes a session (after
Bye or a refused join) the port gets a fresh session at once, ready for the
next Join; when the ARQ gives up (the board is silent for link_timeout
seconds) the session counts as disconnected and the port starts over; when
a Join arrives on a session that already joined, the agent restarted, and
the old session is disconnected before the new one is served. A port that
fails (a USB adapter pulled out) is reopened every second.

Bad input never stops the loop: a broken TCP stream closes that connection;
bad frames inside a good stream, and anything a serial line mangles, are
counted (LinkCounters.rejected) and skipped; a message the runtime cannot
take is refused at coordinator/rounds/boundary.py (Error, count, link closed).

State stays bounded whatever clients do (issue 11): a TCP connection that has
not completed a Join within HANDSHAKE_SECONDS is closed, and so is one that
started a new handshake and holds no slot for that long; at most MAX_PENDING
more such connections are kept than the run has free seats, and from one
source address at most the free seats or MAX_PENDING_PER_ADDRESS, whichever
is larger (so a thousand agents that start at once, even from one address,
are all taken, and one address can never take the last MAX_PENDING places);
a connection that closes without ever joining is forgotten
(its counts go to `unjoined`, its object is dropped); a link whose outbox
grows past `outbox_limit` bytes (it does not read what it is sent) is
dropped. Refusals and rejected frames are logged as counts per interval
(tally.py), not a line each.

A Hello the coordinator cannot accept (wrong key, another version) is
answered with an unauthenticated Refusal, at most a few per source address
and minute (refusals.py), so the agent learns why instead of retrying; a TCP
connection is then closed, a serial port's session goes on untouched (a
stranger on the line must not disturb the agent it serves).

Cost per event (issue 13): accepting takes every queued connection at once
and pauses, not spins, when file descriptors run out (acceptor.py); the open-file
limit is raised for the run's agents where allowed (fdlimit.py); connections
without a seat are kept in arrival order, so expiring them looks only at the
oldest; a link is watched for writability only while its outbox holds bytes
the socket did not take at once.
"""
import selectors
import socket
import time

from fedzo.coordinator.rounds.boundary import deliver
from fedzo.coordinator.rounds.runtime import CLOSE
from fedzo.coordinator.transports.acceptor import Acceptor, listen as listen_on
from fedzo.coordinator.transports.fdlimit import ensure_open_files
from fedzo.coordinator.transports.refusals import Refusals
from fedzo.coordinator.transports.tally import Tally
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
from fedzo.edge.links.tcpinfo import tcp_header_figures
from fedzo.edge.protocol import (
    COORDINATOR,
    Bye,
    ByeReason,
    Endpoint,
    Hello,
    Join,
    LinkCounters,
    LinkFailed,
    ProtocolError,
    RejoinSecrets,
    Session,
)
from fedzo.edge.protocol.arq import ARQ_STAT_KEYS

RECV_BYTES = 65536
HANDSHAKE_SECONDS = 30.0
MAX_PENDING = 64              # connections without a join, from all addresses, beyond the free seats
MAX_PENDING_PER_ADDRESS = 8   # ... and from one source address, if the free seats are fewer
OUTBOX_MIN_BYTES = 1 << 20    # a link's unsent bytes: at least this much is allowed,
OUTBOX_VECTORS = 3            # plus this many whole theta-sized vectors of 4 bytes an element
POLL_SECONDS = 0.05           # longest sleep of a pass (the ARQ timers' resolution)
NO_FD_POLL_SECONDS = 0.005    # with a port that cannot be selected on
DRAIN_SECONDS = 5.0           # after the run: how long to wait for the last bytes to be acknowledged
REOPEN_SECONDS = 1.0


class TcpLink:
    """One agent connection on the coordinator's side."""

    transport = "tcp"

    def __init__(self, sock, address, run_key, secrets):
        self.sock = sock
        self.host = address[0]
        self.joined = False       # a Join was taken: kept for the accounting after it closes
        self.name = f"tcp-{address[0]}:{address[1]}"
        self.counters = LinkCounters(self.name)
        self.endpoint = Endpoint(Session(COORDINATOR, run_key, counters=self.counters, rejoin_secrets=secrets))
        self.outbox = bytearray()
        self.closing = False      # close once the outbox is written
        self.open = True
        self.pending_since = time.monotonic()   # holding no slot since (None: holds one)
        self.watching_write = False   # the selector reports writability (the outbox was not taken at once)
        self.bytes_in = 0
        self.bytes_out = 0
        self.tcp_headers = {}     # the kernel's segment counts, read when the socket closes

    def read_tcp_headers(self) -> None:
        """Keep the kernel's segment counts (call before closing the socket)."""
        self.tcp_headers = tcp_header_figures(self.sock) or self.tcp_headers

    def transport_stats(self) -> dict:
        """Transport-specific figures for the run summary: the TCP/IP header bytes
        (reported separately from frame bytes, DESIGN.md §6), down = what we sent."""
        h = self.tcp_headers
        if not h:
            return {"transport": "tcp"}
        return {"transport": "tcp", "tcp_segments_up": h["segments_in"], "tcp_segments_down": h["segments_out"],
                "tcp_ip_header_bytes_up": h["header_bytes_in"], "tcp_ip_header_bytes_down": h["header_bytes_out"]}


class SerialSession:
    """One agent session on a serial port: what the runtime sees as a link."""

    transport = "serial"

    def __init__(self, port, number: int):
        self.port = port
        self.name = f"serial-{port.name}#{number}"
        self.counters = LinkCounters(self.name)
        self.open = True
        self.joined = False
        self.link_failed = False
        self._arq_totals = {key: 0 for key in ARQ_STAT_KEYS}
        self._arq = None
        self._arq_base = None

    def attach(self, arq) -> None:
        """Count what `arq` does from now on for this session."""
        self.detach()
        self._arq, self._arq_base = arq, dict(arq.stats)

    def detach(self) -> None:
        """Stop counting the current ARQ (it now serves another session, or is gone)."""
        if self._arq is not None:
            for key in ARQ_STAT_KEYS:
                self._arq_totals[key] += self._arq.stats[key] - self._arq_base[key]
        self._arq = self._arq_base = None

    def arq_stats(self) -> dict:
        """The ARQ's counts while it served this session."""
        out = dict(self._arq_totals)
        if self._arq is not None:
            for key in ARQ_STAT_KEYS:
                out[key] += self._arq.stats[key] - self._arq_base[key]
        return out

    def transport_stats(self) -> dict:
        """Serial figures for the run summary: wire time, retransmissions, link failures."""
        arq = self.arq_stats()
        baud = self.port.baud
        return {"transport": "serial", "port": self.port.name, "baud": baud,
                "wire_seconds_up": wire_seconds(self.counters.total["up"].wire_bytes, baud),
                "wire_seconds_down": wire_seconds(self.counters.total["down"].wire_bytes, baud),
                # Packets the coordinator sent again; the agent's retransmissions that
                # reached us show up as duplicates.
                "retransmissions": arq["retransmitted"], "duplicates_received": arq["duplicates"],
                # ARQ packets refused for a wrong or missing tag, and sealed ones that came
                # before this line had the session's keys (issue 11).
                "forged_packets": arq["forged"], "unkeyed_packets": arq["unkeyed"],
                "link_failures": int(self.link_failed)}


class SerialPort:
    """A serial port served by the coordinator, across any number of agent sessions."""

    def __init__(self, path: str, baud: int, run_key: bytes, secrets: RejoinSecrets, *,
                 fragment: int = DEFAULT_FRAGMENT_BYTES, link_timeout: float = DEFAULT_LINK_TIMEOUT):
        self.name = path
        self.baud = check_baud(baud)
        self.fragment = check_fragment(fragment)
        self.link_timeout = link_timeout
        self.key, self.secrets = run_key, secrets
        self.io = None
        self.sessions = []        # every session (for the accounting)
        self.outbox = bytearray()
        self.bytes_in = self.bytes_out = 0
        self.failures = 0         # times the port itself failed
        self.down_since = None
        self.link = self.endpoint = self.arq = None
        # (frame, ARQ keys) of a sealed Bye(TIMEOUT) for an agent whose link we gave
        # up on: resent on every fresh line, on a sealed channel under that session's
        # keys, until acknowledged or the agent joins again, since an agent with
        # nothing to send would not notice the loss otherwise.
        self.pending_bye = None
        self.reopen()

    def reopen(self) -> None:
        """Open the device and start a fresh line (SerialLinkError if it cannot be opened)."""
        self.io = PortIO(self.name, self.baud)
        self.down_since = None
        self.outbox.clear()
        self.new_line()

    def resend_pending_bye(self) -> None:
        """Queue the pending Bye(TIMEOUT), if any, on the current line."""
        if self.pending_bye is not None:
            frame, keys = self.pending_bye
            self.endpoint.send_frame(frame, time.monotonic(), name=Bye.NAME, keys=keys)

    @property
    def up(self) -> bool:
        return self.io is not None

    def _end_session_link(self) -> None:
        """The current session, if any, is over: stop counting for it and close it."""
        if self.link is not None:
            self.link.detach()
            self.link.open = False

    def _new_session_link(self) -> SerialSession:
        link = SerialSession(self, len(self.sessions))
        self.sessions.append(link)
        return link

    def _fresh_session(self) -> Session:
        """A protocol session waiting for a Hello, counted under the current link."""
        return Session(COORDINATOR, self.key, counters=self.link.counters, rejoin_secrets=self.secrets)

    def new_line(self) -> None:
        """Fresh ARQ state and a fresh session (the old session, if any, is over)."""
        self._end_session_link()
        self.arq = make_arq(self.baud, fragment=self.fragment, link_timeout=self.link_timeout)
        self.link = self._new_session_link()
        self.endpoint = SerialEndpoint(self._fresh_session(), self.arq, fragment=self.fragment)
        self.link.attach(self.arq)

    def new_session(self, *, session=None, drop_backlog=False) -> SerialSession:
        """Serve the next session on the same line; returns the new link.

        session: a Session already restarted by a Join (the agent restarted),
        which keeps its handshake state under the new link's counters.
        """
        self._end_session_link()
        self.link = self._new_session_link()
        if session is None:
            session = self._fresh_session()
        else:
            session.counters = self.link.counters
        self.endpoint.rebind(session, drop_backlog=drop_backlog)
        self.link.attach(self.arq)
        return self.link

    @property
    def idle(self) -> bool:
        """Nothing waits to be written or acknowledged."""
        return not self.outbox and self.endpoint.idle

    def close(self) -> None:
        self._end_session_link()
        if self.io is not None:
            self.io.close()
            self.io = None


class LinkList:
    """The server's TCP links in the order they came: append and remove in O(1)
    (a dict underneath), iterated, indexed and compared like the list it replaced."""

    def __init__(self):
        self._links = {}

    def append(self, link) -> None:
        self._links[link] = None

    def remove(self, link) -> None:
        del self._links[link]

    def __contains__(self, link) -> bool:
        return link in self._links

    def __iter__(self):
        return iter(list(self._links))

    def __len__(self) -> int:
        return len(self._links)

    def __getitem__(self, index):
        return list(self._links)[index]

    def __eq__(self, other) -> bool:
        return list(self._links) == list(other)


class Server:
    """Serves a Run's runtime to TCP agents and serial ports until the run is done.

    listen: (host, port) to accept TCP agents on, or None for serial only.
    serial: device paths or pyserial URLs to serve (SerialLinkError if one
    cannot be opened).
    """

    def __init__(self, run, run_key: bytes, *, listen=("127.0.0.1", 0), serial=(), baud=DEFAULT_BAUD,
                 fragment=DEFAULT_FRAGMENT_BYTES, link_timeout=DEFAULT_LINK_TIMEOUT, log=print):
        if listen is None and not serial:
            raise ValueError("a server needs a TCP address to listen on or a serial port")
        self.run, self.runtime, self.key, self.log = run, run.runtime, run_key, log
        run.record_in_background()          # evaluation and checkpoints never stop this loop
        self.secrets = RejoinSecrets()      # agent id -> rejoin secret, shared by every link
        self.selector = selectors.DefaultSelector()
        self.listener = self.acceptor = None
        self.links = LinkList()   # TCP links open now or that ever joined (for the accounting)
        self.pending = {}         # TCP link holding no slot -> since when, oldest first
        self.pending_hosts = {}   # source address -> how many of those it has
        self.unjoined = LinkCounters("unjoined")   # what closed links that never joined carried
        self.forgotten = 0        # how many such links were dropped
        self.ports = []           # every serial port
        self.closed_streams = 0
        self.tally = Tally(log)
        self.refusals = Refusals(self.tally)
        # A Sync, a FedAvg download and a spare, at 4 bytes an element, beyond a floor.
        self.outbox_limit = OUTBOX_MIN_BYTES + OUTBOX_VECTORS * 4 * run.store.d
        try:
            for path in serial:
                port = SerialPort(path, baud, run_key, self.secrets, fragment=fragment,
                                  link_timeout=link_timeout)
                self.ports.append(port)
                self._register_port(port)
            if listen is not None:
                soft, needed, problem = ensure_open_files(run.config.agents, MAX_PENDING)
                if problem is not None:
                    log(f"coordinator: {problem}")
                self.listener = listen_on(listen)
                self.acceptor = Acceptor(self.listener, self.selector, log)
        except BaseException:
            self._shutdown()
            raise

    @property
    def address(self) -> tuple:
        """The TCP address agents connect to."""
        if self.listener is None:
            raise ValueError("this server does not listen on TCP")
        return self.listener.getsockname()[:2]

    def serve(self, stop_after=None, check=None) -> None:
        """Run until the runtime is done and every queued byte is written (and acknowledged).

        check(): called every pass; it may raise to abort (e.g. all agents died).
        """
        deadline = None if stop_after is None else time.monotonic() + stop_after
        drain_until = None
        try:
            while True:
                now = time.monotonic()
                if self.runtime.done:
                    drain_until = drain_until or now + DRAIN_SECONDS
                    if self._drained() or now > drain_until:
                        break
                if deadline is not None and now > deadline:
                    raise TimeoutError(f"the run did not finish within {stop_after} s")
                self._poll_once()
                if self.acceptor is not None:
                    self.acceptor.tick(now)
                self._dispatch(self.runtime.tick())
                self._service_ports()
                self._expire_handshakes()
                self.tally.tick()
                self.run.check()            # a round's record failed (a full disk): stop here
                if check is not None:
                    check()
        finally:
            self._shutdown()
            self.tally.flush()

    def _drained(self) -> bool:
        return (not any(l.outbox for l in self._open_links())
                and all(p.idle for p in self.ports if p.up))

    def _poll_once(self) -> None:
        unselectable = any(p.up and p.io.fd is None for p in self.ports)
        timeout = NO_FD_POLL_SECONDS if unselectable else POLL_SECONDS
        for key, events in self.selector.select(timeout=timeout):
            target = key.data
            if target is None:
                self._accept(time.monotonic())
            elif isinstance(target, SerialPort):
                if events & selectors.EVENT_READ:
                    self._read_port(target)
                if events & selectors.EVENT_WRITE and target.up:
                    self._flush_port(target)
            else:
                if events & selectors.EVENT_READ:
                    self._read(target)
                if events & selectors.EVENT_WRITE and target.open:
                    self._write(target)

    def push(self, outputs) -> None:
        """Send what the runtime returned outside a transport event (a key reload's
        disconnections, coordinator/keys/reload.py); call it from the serving thread."""
        self._dispatch(outputs)

    def close(self) -> None:
        """Close every link, port and the listener without serving (serve() closes them itself)."""
        self._shutdown()

    def _shutdown(self) -> None:
        for link in self._open_links():
            self._close(link, notify=False)
        for port in self.ports:
            self._unregister_port(port)
            port.close()
        if self.acceptor is not None:
            self.acceptor.close()
        elif self.listener is not None:
            self.listener.close()
        self.selector.close()

    # ---- TCP connections ----

    def _open_links(self):
        return [l for l in self.links if l.open]

    def _pending_links(self):
        """Open connections that hold no slot: not joined yet, or in a new handshake."""
        return list(self.pending)

    def pending_limits(self) -> tuple:
        """(connections without a seat allowed in all, from one address) right now."""
        free = self.runtime.free_slots
        return MAX_PENDING + free, max(MAX_PENDING_PER_ADDRESS, free)

    def _set_pending(self, link, now) -> None:
        """File `link` as holding no slot (from `now`), or as seated, from what the runtime says."""
        pending = link.open and self.runtime.slot_of(link) is None
        if pending == (link in self.pending):
            return
        if pending:
            self.pending[link] = link.pending_since = now
            self.pending_hosts[link.host] = self.pending_hosts.get(link.host, 0) + 1
        else:
            del self.pending[link]
            link.pending_since = None
            left = self.pending_hosts.pop(link.host) - 1
            if left:
                self.pending_hosts[link.host] = left

    def _accept(self, now):
        for sock, address in self.acceptor.accept_ready(now):
            total, per_address = self.pending_limits()
            if len(self.pending) >= total:
                refusal = f"connections refused: {total} without a join"
            elif self.pending_hosts.get(address[0], 0) >= per_address:
                refusal = f"connections refused: {per_address} without a join from {address[0]}"
            else:
                refusal = None
            if refusal is not None:
                self.tally.note(refusal)
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = TcpLink(sock, address, self.key, self.secrets)
            self.links.append(link)
            self._set_pending(link, now)
            self.selector.register(sock, selectors.EVENT_READ, link)

    def _read(self, link):
        try:
            data = link.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(link)
            return
        link.bytes_in += len(data)
        try:
            messages = link.endpoint.feed(data)
        except ProtocolError as exc:      # a broken stream: this connection cannot go on
            self.closed_streams += 1
            self.log(f"coordinator: closing {link.name}: {exc}")
            self._close(link)
            return
        self._refuse_tcp(link)
        self._log_rejections(link.endpoint, link.name)
        for msg in messages:
            if not link.open or link.closing:
                break                      # refused at the boundary: the rest is not read
            self._dispatch(deliver(self.runtime, link, msg, self.log))
            if not link.joined and self.runtime.slot_of(link) is not None:
                link.joined = True
        if messages:
            self._set_pending(link, time.monotonic())   # it joined, or left its slot for a new handshake

    def _refuse_tcp(self, link):
        """Answer a Hello the coordinator cannot accept (if the source's allowance lasts) and close."""
        pending = Refusals.pending(link.endpoint.errors)
        if not pending:
            return
        frame = self.refusals.answer(link.host, pending[0])
        if frame is not None:
            wire = link.endpoint.framing.wrap(frame)
            link.counters.record_other(link.endpoint.session.send_direction, len(wire))
            link.outbox += wire
            self._watch_write(link, True)
        link.closing = True                # nothing this connection says next can be taken
        if not link.outbox:
            self._close(link, notify=False)

    def _write(self, link):
        try:
            sent = link.sock.send(link.outbox)
        except (BlockingIOError, InterruptedError):
            self._watch_write(link, True)
            return
        except OSError:
            self._close(link)
            return
        link.bytes_out += sent
        del link.outbox[:sent]
        if not link.outbox:
            if link.closing:
                self._close(link, notify=False)
            else:
                self._watch_write(link, False)
        else:
            self._watch_write(link, True)           # the socket's buffer is full: wait until it drains

    def _watch_write(self, link, on: bool) -> None:
        """Have the selector report the link writable (while bytes wait), or stop (no call if unchanged)."""
        if link.open and link.watching_write != on:
            link.watching_write = on
            self.selector.modify(link.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if on else 0), link)

    def _close(self, link, notify=True):
        if not link.open:
            return
        try:
            self.selector.unregister(link.sock)
        except (KeyError, ValueError):
            pass
        if isinstance(link, TcpLink):
            link.read_tcp_headers()
        link.sock.close()
        link.open = False
        if isinstance(link, TcpLink):
            self._set_pending(link, None)
            if self.acceptor is not None:
                self.acceptor.resume()          # a descriptor is free: connections may wait for it
        if not link.joined:
            self._forget(link)
        if notify:
            self._dispatch(self.runtime.disconnected(link))

    def _forget(self, link):
        """A link that closed without joining: keep its counts, drop the object."""
        self.unjoined.merge(link.counters)
        self.forgotten += 1
        self.links.remove(link)

    def _expire_handshakes(self):
        """Close connections that have held no slot for HANDSHAKE_SECONDS: the oldest first,
        looking no further than the first that has time left (self.pending is in arrival order)."""
        now = time.monotonic()
        expired = []
        for link, since in self.pending.items():    # no copy: this runs on every pass of the loop
            if now - since <= HANDSHAKE_SECONDS:
                break
            if not link.closing:                    # (a refused one closes once its answer is written)
                expired.append(link)
        for link in expired:
            self.tally.note(f"connections closed: no valid join in {HANDSHAKE_SECONDS:.0f} s")
            self._close(link)

    # ---- serial ports ----

    def _register_port(self, port, events=selectors.EVENT_READ):
        if port.up and port.io.fd is not None:
            try:
                self.selector.modify(port.io.fd, events, port)
            except KeyError:
                self.selector.register(port.io.fd, events, port)

    def _unregister_port(self, port):
        if port.up and port.io.fd is not None:
            try:
                self.selector.unregister(port.io.fd)
            except (KeyError, ValueError):
                pass

    def _read_port(self, port):
        try:
            data = port.io.read()
        except SerialLinkError as exc:
            self._port_failed(port, exc)
            return
        if not data:
            return
        port.bytes_in += len(data)
        messages = port.endpoint.feed(data, time.monotonic())
        for refusal in Refusals.pending(port.endpoint.errors)[:1]:
            frame = self.refusals.answer(port.name, refusal)
            if frame is not None:       # queued on the line; the session it serves goes on
                port.endpoint.send_frame(frame, time.monotonic(), name="refusal")
        self._log_rejections(port.endpoint, port.link.name)
        self._flush_port(port)          # acknowledge first: the runtime may take a while
        for msg in messages:
            link = port.link
            if isinstance(msg, Hello) and link.joined:
                # The agent restarted (or lost the link before we noticed): its old
                # session is over; the Session object itself already restarted.
                old = link
                old.link_failed = True       # lost all the same: the summary counts it
                link = port.new_session(session=port.endpoint.session, drop_backlog=True)
                self._dispatch(self.runtime.disconnected(old))
            elif isinstance(msg, Hello) and port.endpoint.arq.keys is not None:
                # A new handshake after a session this port already closed: the agent
                # cannot acknowledge that session's sealed packets any more.
                port.endpoint.peer_started_over()
            if isinstance(msg, Join):
                link.joined = True
                port.pending_bye = None      # it is back: nothing more to tell the old session
            self._dispatch(deliver(self.runtime, link, msg, self.log))
            if link is not port.link:
                break                        # the session ended (Bye, refusal): the rest was its own

    def _service_ports(self):
        """Every pass: reopen failed ports, poll unselectable ones, drive the ARQ timers, write."""
        now = time.monotonic()
        for port in self.ports:
            if not port.up:
                if now - port.down_since >= REOPEN_SECONDS:
                    try:
                        port.reopen()
                    except SerialLinkError:
                        port.down_since = now
                        continue
                    self.log(f"coordinator: serial port {port.name} is back")
                    self._register_port(port)
                continue
            if port.io.fd is None:
                self._read_port(port)
                if not port.up:
                    continue
            try:
                port.endpoint.tick(now)
            except LinkFailed as exc:
                self._link_failed(port, exc)
            if port.pending_bye is not None and port.endpoint.idle:
                port.pending_bye = None      # acknowledged: the agent will join again
            self._flush_port(port)

    def _flush_port(self, port):
        if not port.up:
            return
        port.outbox += port.endpoint.output()
        if port.outbox:
            try:
                n = port.io.write(port.outbox)
            except SerialLinkError as exc:
                self._port_failed(port, exc)
                return
            port.bytes_out += n
            del port.outbox[:n]
        self._register_port(port, selectors.EVENT_READ | (selectors.EVENT_WRITE if port.outbox else 0))

    def _link_failed(self, port, exc):
        """The ARQ gave up: the agent behind this port is gone (for now)."""
        old = port.link
        old.link_failed = old.joined
        session = port.endpoint.session
        if old.joined:
            self.log(f"coordinator: serial link {port.name} lost ({exc})")
            if session.established:
                # Tell the agent, once the line works again, that its session is over.
                try:
                    bye = session.seal(Bye(ByeReason.TIMEOUT, "serial link lost; join again"))
                    port.pending_bye = (bye, session.arq_keys)
                except ProtocolError:
                    port.pending_bye = None
        port.new_line()
        port.resend_pending_bye()
        if old.joined:
            self._dispatch(self.runtime.disconnected(old))

    def _port_failed(self, port, exc):
        """The device failed: end its session and try to reopen it every second."""
        self.log(f"coordinator: {exc}; reopening every {REOPEN_SECONDS:.0f} s")
        port.failures += 1
        old = port.link
        self._unregister_port(port)
        port.close()
        port.down_since = time.monotonic()
        if old is not None and old.joined:
            self._dispatch(self.runtime.disconnected(old))

    # ---- both ----

    def _log_rejections(self, endpoint, name):
        for error in list(endpoint.errors):
            self.tally.note(f"frames rejected ({error.reason})")
        endpoint.errors.clear()

    def _dispatch(self, outputs):
        written = []
        for link, msg in outputs:
            if isinstance(link, SerialSession):
                self._send_serial(link, msg)
                continue
            if not link.open or link.closing:
                continue
            if msg is CLOSE:
                link.closing = True
                if not link.outbox:
                    self._close(link, notify=False)
                continue
            try:
                link.outbox += link.endpoint.send(msg)
            except ProtocolError as exc:        # the session is closed (Bye sent)
                self.log(f"coordinator: cannot send {msg.NAME} to {link.name}: {exc}")
                continue
            if len(link.outbox) > self.outbox_limit:
                # It does not read what it is sent: drop it before it grows the coordinator.
                self.log(f"coordinator: {link.name} left {len(link.outbox)} bytes unread "
                         f"(limit {self.outbox_limit}); closing")
                self.tally.note("links dropped: outbox full")
                self._close(link)
                continue
            written.append(link)
        # Hand the bytes to the sockets now, before a closed round's record starts, one
        # write per link for all its messages (serial ports are flushed as each message is
        # sent); only what a socket does not take at once waits for the selector.
        for link in dict.fromkeys(written):
            if link.open and link.outbox:
                self._write(link)
        self.runtime.after_dispatch()           # sent and counted: the round's metrics are complete

    def _send_serial(self, link, msg):
        port = link.port
        if not link.open or link is not port.link or not port.up:
            return
        if msg is CLOSE:
            # The port stays: what was queued still goes out, and the next Join
            # starts a new session.
            port.new_session()
            return
        try:
            port.endpoint.send(msg, time.monotonic())
        except LinkFailed as exc:
            self._link_failed(port, exc)
            return
        except ProtocolError as exc:
            self.log(f"coordinator: cannot send {msg.NAME} to {link.name}: {exc}")
            return
        self._flush_port(port)
