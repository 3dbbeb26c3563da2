"""The coordinator's TCP transport, and `fedzo simulate --link tcp`.

One thread, one selector: it accepts agents, feeds each connection's bytes to
its protocol Endpoint, hands the messages to the CoordinatorRuntime and
writes what the runtime answers. A connection that sends a broken stream
(a length above the maximum frame) is closed and counted; bad frames inside
a good stream are counted and skipped by the Endpoint; either way everyone
else is served on. A connection that has not completed a Join within
HANDSHAKE_SECONDS is closed, and at most MAX_PENDING such connections are
kept, so idle or hostile peers cannot hold the coordinator's resources.
"""
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

from coordinator.runtime import CLOSE
from edge.keyfile import write_key_file
from edge.protocol import COORDINATOR, Endpoint, LinkCounters, NonceRegistry, ProtocolError, Session

RECV_BYTES = 65536
HANDSHAKE_SECONDS = 30.0
MAX_PENDING = 64


class TcpLink:
    """One agent connection on the coordinator's side."""

    def __init__(self, sock, address, run_key, nonces):
        self.sock = sock
        self.name = f"tcp-{address[0]}:{address[1]}"
        self.counters = LinkCounters(self.name)
        self.endpoint = Endpoint(Session(COORDINATOR, run_key, counters=self.counters, join_nonces=nonces))
        self.outbox = bytearray()
        self.closing = False      # close once the outbox is written
        self.open = True
        self.opened = time.monotonic()
        self.bytes_in = 0
        self.bytes_out = 0


class TcpServer:
    """Serves a Run's runtime to agents over TCP until the run is done."""

    def __init__(self, run, run_key: bytes, listen=("127.0.0.1", 0), log=print):
        self.run, self.runtime, self.key, self.log = run, run.runtime, run_key, log
        self.nonces = NonceRegistry()
        self.selector = selectors.DefaultSelector()
        self.listener = socket.create_server(listen, reuse_port=False)
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.links = []           # every link ever accepted (for the accounting)
        self.closed_streams = 0

    @property
    def address(self) -> tuple:
        return self.listener.getsockname()[:2]

    def serve(self, stop_after=None) -> None:
        """Run until the runtime is done and every queued byte is written."""
        deadline = None if stop_after is None else time.monotonic() + stop_after
        try:
            while not (self.runtime.done and not any(l.outbox for l in self._open_links())):
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"the run did not finish within {stop_after} s")
                for key, events in self.selector.select(timeout=0.05):
                    if key.data is None:
                        self._accept()
                        continue
                    link = key.data
                    if events & selectors.EVENT_READ:
                        self._read(link)
                    if events & selectors.EVENT_WRITE and link.open:
                        self._write(link)
                self._dispatch(self.runtime.tick())
                self._expire_handshakes()
        finally:
            for link in self._open_links():
                self._close(link, notify=False)
            self.selector.close()
            self.listener.close()

    # ---- connections ----

    def _open_links(self):
        return [l for l in self.links if l.open]

    def _accept(self):
        try:
            sock, address = self.listener.accept()
        except OSError:
            return
        pending = [l for l in self._open_links() if self.runtime._slot_of(l) is None]
        if len(pending) >= MAX_PENDING:
            self.log(f"coordinator: too many connections without a join; refusing {address[0]}")
            sock.close()
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = TcpLink(sock, address, self.key, self.nonces)
        self.links.append(link)
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
        for error in list(link.endpoint.errors):
            self.log(f"coordinator: rejected a frame from {link.name}: {error}")
        link.endpoint.errors.clear()
        for msg in messages:
            self._dispatch(self.runtime.received(link, msg))

    def _write(self, link):
        try:
            sent = link.sock.send(link.outbox)
        except (BlockingIOError, InterruptedError):
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
                self.selector.modify(link.sock, selectors.EVENT_READ, link)

    def _dispatch(self, outputs):
        for link, msg in outputs:
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
            self.selector.modify(link.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, link)

    def _close(self, link, notify=True):
        if not link.open:
            return
        try:
            self.selector.unregister(link.sock)
        except (KeyError, ValueError):
            pass
        link.sock.close()
        link.open = False
        if notify:
            self._dispatch(self.runtime.disconnected(link))

    def _expire_handshakes(self):
        now = time.monotonic()
        for link in self._open_links():
            if self.runtime._slot_of(link) is None and not link.closing and now - link.opened > HANDSHAKE_SECONDS:
                self.log(f"coordinator: {link.name} sent no valid join in {HANDSHAKE_SECONDS:.0f} s; closing")
                self._close(link)

    def unbound_counters(self) -> LinkCounters:
        """Traffic of connections that never joined (garbage, wrong key...)."""
        total = LinkCounters("unbound")
        bound = {id(l) for s in self.runtime.slots for l in s.links}
        for link in self.links:
            if id(link) not in bound:
                total.merge(link.counters)
        return total


def simulate_tcp(run, run_key: bytes, log=print, agent_args=(), timeout=None) -> dict:
    """K `fedzo agent` processes against this coordinator on loopback; returns the summary."""
    server = TcpServer(run, run_key, ("127.0.0.1", 0), log=log)
    host, port = server.address
    folder = Path(run.folder.path)
    key_file = folder / "run.key"
    write_key_file(key_file, run_key)
    processes, logs = [], []
    for k in range(run.config.agents):
        agent_log = open(folder / f"agent-{k}.log", "w")
        logs.append(agent_log)
        cmd = [sys.executable, "-m", "edge.cli", "agent", "--connect", f"{host}:{port}",
               "--key-file", str(key_file), "--id", str(k), *agent_args]
        processes.append(subprocess.Popen(cmd, stdout=agent_log, stderr=subprocess.STDOUT))
    try:
        server.serve(stop_after=timeout)
        summary = run.finish()
    finally:
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for agent_log in logs:
            agent_log.close()
    failed = [k for k, p in enumerate(processes) if p.returncode not in (0, None)]
    if failed:
        log(f"agents {failed} exited with an error; see {folder}/agent-K.log")
    return summary
