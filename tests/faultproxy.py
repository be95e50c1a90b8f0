"""A reverse proxy on 127.0.0.1 that breaks requests to a real tracking server on purpose.

Placed between the uploader and ``mlflow server``, it forwards every request unchanged unless
told to fail it: answer 500/503 for a share of requests (deterministically: every k-th), delay
answers, close the connection without an answer, forward a ``create_run`` and then lose the
server's answer, cut a ``create_run`` and carry it out only after its retry made the run again
(a server finishing a request whose client is gone), or go down altogether (connections
refused) and come back on the same port.

Tests steer it directly, or from inside a pytest run under test through control paths:
``GET /__fault__/down`` takes it down (after answering), ``GET /__fault__/slow/SECONDS`` sets
the delay, ``GET /__fault__/forwarded`` answers how many requests reached the server.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Hop-by-hop headers are the proxy's own business, not forwarded.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)
CREATE_RUN = "/runs/create"
_CONTROL = "/__fault__/"
# No fault or answer waits longer than this: every thread of the proxy ends in bounded time.
_LONGEST_DELAY = 120.0


@dataclass
class Faults:
    """What to break. Shares are deterministic: a share of 0.25 fails every 4th request."""

    # Answer this share of requests with an error status instead of forwarding them.
    error_share: float = 0.0
    error_statuses: tuple[int, ...] = (500, 503)
    # At most this many of those errors are 500s (None: no limit); the others are forwarded.
    # The uploader takes a 500 repeated on one request as the server's final word, so an
    # unbounded share of them can rightly fail an upload whose retries happen to line up.
    most_500s: int | None = None
    # Close this share of connections without reading the request or answering.
    close_share: float = 0.0
    # Forward this many create_run requests, then close the connection instead of answering.
    lose_create_answers: int = 0
    # Cut this many create_run requests before forwarding them, and forward each only once
    # another create_run was answered: the retry's look-up runs before the server makes it.
    late_creates: int = 0
    # Seconds to wait before forwarding each request (only the first ``delayed`` ones, if set:
    # a cold server, slow until its workers have imported what they need).
    delay: float = 0.0
    delayed: int | None = None
    # Only requests whose path contains this are broken (errors, closes); None: all.
    only: str | None = None


def _due(count: int, share: float) -> bool:
    """Whether request number ``count`` (1-based) is one of the share to break."""
    return share > 0 and int(count * share) > int((count - 1) * share)


def _bound(port: int) -> socket.socket:
    """A TCP socket bound to ``port`` of 127.0.0.1 (0: any), not listening: it refuses."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a connection cut on purpose is not news; the test's output is for the test


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.faults = Faults()
        # What happened, for the test to check that the faults really hit: "forwarded",
        # "error 503", "closed", "lost create_run answer", "delayed".
        self.seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._count = 0
        # create_run requests answered so far; late ones wait for it to grow.
        self._creates_answered = 0
        self._created = threading.Condition(self._lock)
        # Requests being forwarded to the server now: a server that died finishes these or
        # none, and never carries one out after it came back.
        self._forwarding = 0
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # The port stays bound to us, listening only while the proxy is up: no other server
        # can take it between the test learning it and the proxy answering on it.
        self._held: socket.socket | None = _bound(0)
        self.port = int(self._held.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    # -- up and down ---------------------------------------------------------------------------

    def up(self) -> None:
        if self._server is not None:
            return
        self._stopping.clear()
        held, self._held = self._held or _bound(self.port), None
        server = _QuietServer(
            ("127.0.0.1", self.port), self._handler_class(), bind_and_activate=False
        )
        server.socket.close()
        server.socket = held
        server.server_name, server.server_port = "127.0.0.1", self.port
        server.server_activate()
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones, like a server that died."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        with self._created:
            self._created.notify_all()
        server.shutdown()
        server.server_close()
        # Held again at once, refusing connections, until the proxy comes back up.
        self._held = _bound(self.port)
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        with self._created:
            self._created.wait_for(lambda: self._forwarding == 0, timeout=_LONGEST_DELAY)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def close(self) -> None:
        """Down for good: the port is let go."""
        self.down()
        if self._held is not None:
            self._held.close()
            self._held = None

    # -- the proxy -----------------------------------------------------------------------------

    def _next(self) -> int:
        with self._lock:
            self._count += 1
            return self._count

    def _count_error(self, status: int) -> bool:
        """Count one injected error of ``status``; False for a 500 over ``most_500s``."""
        with self._lock:
            limit = self.faults.most_500s
            if status == 500 and limit is not None and self.seen["error 500"] >= limit:
                return False
            self.seen[f"error {status}"] += 1
            return True

    def _note(self, what: str) -> None:
        with self._lock:
            self.seen[what] += 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test's output is for the test

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._connections.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._connections.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def do_GET(self) -> None:
                self._handle()

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    for _ in range(1_000_000):
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _cut(self) -> None:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self) -> None:
                if self.path == _CONTROL + "forwarded":
                    with proxy._lock:
                        count = proxy.seen["forwarded"]
                    self._answer(200, [("Content-Type", "text/plain")], str(count).encode())
                    return
                if self.path.startswith(_CONTROL):
                    self._control(self.path[len(_CONTROL) :])
                    return
                faults = proxy.faults
                count = proxy._next()
                body = self._body()
                targeted = faults.only is None or faults.only in self.path
                if faults.delay > 0 and (faults.delayed is None or count <= faults.delayed):
                    proxy._note("delayed")
                    if proxy._stopping.wait(min(faults.delay, _LONGEST_DELAY)):
                        self._cut()
                        return
                if targeted and _due(count, faults.close_share):
                    proxy._note("closed")
                    self._cut()
                    return
                if targeted and _due(count, faults.error_share):
                    status = faults.error_statuses[count % len(faults.error_statuses)]
                    if proxy._count_error(status):
                        self._answer(status, [("Content-Type", "text/plain")], b"injected fault")
                        return
                creating = self.path.split("?")[0].endswith(CREATE_RUN)
                if creating and targeted and self._late(body):
                    return
                status, headers, answer = self._forward(body)
                if creating and status == 200:
                    with proxy._lock:
                        lose = proxy.faults.lose_create_answers > 0
                        if lose:
                            proxy.faults.lose_create_answers -= 1
                    if lose:
                        proxy._note("lost create_run answer")
                        self._cut()
                        return
                proxy._note("forwarded")
                self._answer(status, headers, answer)
                if creating:
                    with proxy._created:
                        proxy._creates_answered += 1
                        proxy._created.notify_all()

            def _late(self, body: bytes) -> bool:
                """Cut the client off, then carry out its create_run after the retry's."""
                with proxy._created:
                    if proxy.faults.late_creates <= 0:
                        return False
                    proxy.faults.late_creates -= 1
                    answered = proxy._creates_answered
                proxy._note("late create_run")
                self._cut()
                with proxy._created:
                    proxy._created.wait_for(
                        lambda: proxy._creates_answered > answered or proxy._stopping.is_set(),
                        timeout=_LONGEST_DELAY,
                    )
                status, _, _ = self._forward(body)
                if status == 200:
                    proxy._note("late create_run carried out")
                return True

            def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                with proxy._created:
                    if proxy._stopping.is_set():
                        return 503, [], b"the proxy is down"
                    proxy._forwarding += 1
                try:
                    return self._send(body)
                finally:
                    with proxy._created:
                        proxy._forwarding -= 1
                        proxy._created.notify_all()

            def _send(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=_LONGEST_DELAY)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    headers["Content-Length"] = str(len(body))
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    return response.status, response.getheaders(), response.read()
                finally:
                    upstream.close()

            def _control(self, command: str) -> None:
                self._answer(200, [("Content-Type", "text/plain")], b"ok")
                self.wfile.flush()
                if command == "down":
                    # From another thread: down() waits for this request's thread to end.
                    threading.Thread(target=proxy.down, daemon=True).start()
                elif command.startswith("slow/"):
                    proxy.faults.delay = float(command.removeprefix("slow/"))

        return Handler
