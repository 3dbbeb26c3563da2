"""The page's HTTP server: the standard library's http.server, in a daemon thread.

One thread serves every request in turn (a page asks once a second; a thread
per request would cost memory for nothing), and a client that stalls is
dropped after REQUEST_SECONDS, so it cannot hold the page for long.

    GET  /              the page (static/page.html)
    GET  /page.js       its script
    GET  /api/next      the oldest open comparison (payload.next_json; ?have=ID: the page has it)
    POST /api/answer    {"id": n, "answer": "left"|"right"|"tie"} -> 200, or 400/409 with a message

Access (docs/SECURITY.md): on a loopback address the page needs no token,
but a request whose Host header is not that address is refused (a web page
elsewhere cannot reach it by DNS rebinding). On any other address every
request but the script needs the token printed at start, in the URL
(?token=...) or, from the script, the X-Fedzo-Token header. Every response
forbids the page from loading or calling anything outside the agent
(Content-Security-Policy). Every refused request is counted in `counters`
(and the desk's refusals in the desk's); nothing a client sends can stop
the server or the agent.
"""
import hmac
import json
import secrets
import socket
import socketserver
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from fedzo.edge.human import payload
from fedzo.edge.human.desk import Refused


def _import_http_server():
    """http.server, without the ssl module that its http.client imports for HTTPS clients.

    The page is plain HTTP and an agent makes no HTTPS requests, while ssl and its
    libraries cost a board about 0.9 MiB of resident memory (docs/human.md). Where ssl
    or http.client is loaded already (a test run, say) this changes nothing; otherwise
    http.client in this process has no HTTPSConnection, which nothing of fedzo's uses.
    """
    if "ssl" in sys.modules or "http.client" in sys.modules:
        import http.server
        return http.server
    sys.modules["ssl"] = None            # makes `import ssl` fail, which http.client allows for
    try:
        import http.server
    finally:
        del sys.modules["ssl"]
    return http.server


_http = _import_http_server()
BaseHTTPRequestHandler, HTTPServer = _http.BaseHTTPRequestHandler, _http.HTTPServer

DEFAULT_ADDRESS = ("127.0.0.1", 8080)
REQUEST_SECONDS = 10.0          # a request must arrive whole within this
STATIC = Path(__file__).resolve().parent / "static"     # package data (pyproject.toml)
TOKEN_HEADER = "X-Fedzo-Token"
COUNTERS = ("bad_token", "bad_host", "malformed", "not_found")
CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
ASSETS = {"/": ("page.html", "text/html; charset=utf-8"), "/page.js": ("page.js", "text/javascript; charset=utf-8")}


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: only this machine can connect."""
    return host in ("localhost", "::1") or host.startswith("127.")


def read_asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


class _Server(HTTPServer):
    """HTTPServer without its reverse DNS lookup at bind (socket.getfqdn loads the resolver's
    libraries, half a megabyte, for a name the page never uses)."""

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class PageServer:
    """Serves `desk` to a person's browser at `address` until `stop()`."""

    def __init__(self, desk, address=DEFAULT_ADDRESS, token=None, clock=time.monotonic):
        host, port = address
        self.desk, self.clock = desk, clock
        self.loopback = is_loopback(host)
        # Off loopback a token is required; on loopback one may still be given.
        self.token = token if token is not None or self.loopback else secrets.token_urlsafe(18)
        self.assets = {path: (read_asset(name), kind) for path, (name, kind) in ASSETS.items()}
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._lock = threading.Lock()
        self.httpd = _Server((host, port), _handler(self))
        self.address = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="fedzo-page", daemon=True)

    @property
    def url(self) -> str:
        """Where a browser finds the page (on every address: this machine's name), with the token."""
        host, port = self.address
        host = socket.gethostname() if host in ("0.0.0.0", "::") else host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/" + (f"?token={self.token}" if self.token else "")

    def start(self) -> "PageServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def count(self, what: str) -> None:
        with self._lock:
            self.counters[what] += 1

    def allowed_hosts(self) -> set:
        host, port = self.address
        names = {host, "localhost", "127.0.0.1", "[::1]"} if self.loopback else set()
        return {f"{name}:{port}" for name in names}


def _handler(server: PageServer):
    class Handler(BaseHTTPRequestHandler):
        server_version = "fedzo-page"
        sys_version = ""
        timeout = REQUEST_SECONDS       # a stalled client is dropped, not waited for

        def log_message(self, format, *args):    # noqa: A002 - the base class's name
            pass                                  # a page polls every second: no line per request

        def do_GET(self):
            url = urlsplit(self.path)
            if not self._admitted(url, static=url.path == "/page.js"):
                return
            if url.path in server.assets:
                body, kind = server.assets[url.path]
                return self._send(200, body, kind)
            if url.path == "/api/next":
                ask = server.desk.next_open()
                have = (parse_qs(url.query).get("have") or [""])[0]
                body = payload.next_json(ask, server.desk.waiting(), server.desk.counters["answered"],
                                         server.clock(), int(have) if have.isdigit() else None)
                return self._send(200, body, "application/json")
            server.count("not_found")
            self._error(404, f"no such page: {url.path}")

        def do_POST(self):
            url = urlsplit(self.path)
            if not self._admitted(url, static=False):
                return
            if url.path != "/api/answer":
                server.count("not_found")
                return self._error(404, f"no such endpoint: {url.path}")
            try:
                length = int(self.headers.get("Content-Length", ""))
                if not 0 <= length <= payload.MAX_ANSWER_BYTES:
                    raise payload.BadRequest(f"an answer is at most {payload.MAX_ANSWER_BYTES} bytes")
                ask_id, answer = payload.parse_answer(self.rfile.read(length))
            except (ValueError, payload.BadRequest) as exc:
                server.count("malformed")
                self.close_connection = True     # the body may be unread: do not reuse the connection
                return self._error(400, str(exc) if isinstance(exc, payload.BadRequest)
                                   else "Content-Length must be a whole number")
            try:
                server.desk.answer(ask_id, answer)
            except Refused as exc:
                return self._error(400 if exc.reason == "bad_answer" else 409, str(exc))
            self._send(200, json.dumps({"ok": True, "id": ask_id, "answer": answer,
                                        "waiting": server.desk.waiting()}).encode(), "application/json")

        def _admitted(self, url, static) -> bool:
            """Host check (loopback) and token check (if any); False after answering a refusal."""
            allowed = server.allowed_hosts()
            if allowed and self.headers.get("Host", "") not in allowed:
                server.count("bad_host")
                self._error(403, "this page answers only to its own address (Host header refused)")
                return False
            if server.token is None or static:
                return True
            given = self.headers.get(TOKEN_HEADER) or (parse_qs(url.query).get("token") or [""])[0]
            if not hmac.compare_digest(given.encode(), server.token.encode()):
                server.count("bad_token")
                self._error(403, "wrong or missing token: open the URL the agent printed")
                return False
            return True

        def _error(self, status, message):
            self._send(status, json.dumps({"error": message}).encode(), "application/json")

        def _send(self, status, body, kind):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")   # the token stays out of any Referer
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler
