"""The gunicorn worker of ``zone-publisher serve``: gunicorn's threaded worker, plus refusals of a
rate-limited client answered in its event loop.

Measured on 2 cores: gunicorn's ``gthread`` spends 300-450 µs of CPU per request whatever the app
does (thread-pool hand-off, its HTTP parser, WSGI environ, response headers), so a flood of 2,000
bad-token requests/s kept both web processes busy and valid pushes queued behind it (p99 0.6 s).
A client that keeps failing authentication is refused (429) by the app before Flask anyway; here
the same answer is given from the request line and the peer address, read with ``MSG_PEEK`` on a
kept-alive connection that became readable, and the request's bytes are then consumed.  Anything
else, or anything unusual about the request (no complete head and body yet, chunked body,
``Expect``, ``Connection: close``, percent-escapes, TLS, HTTP/1.0), goes to the thread pool as
before, so behaviour and logging of every other request are gunicorn's.
"""

from __future__ import annotations

import socket
import time

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

_PEEK = 16384
_UNSAFE_HEADERS = (b"transfer-encoding", b"expect", b"upgrade")


def request_to_refuse(data: bytes, limit_request_line: int) -> tuple[str, str, int] | None:
    """``(method, path, size)`` of the complete HTTP/1.1 request at the start of ``data`` when it
    is simple enough to be answered without gunicorn's parser (``size`` = head + body bytes), else
    None."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    line_end = data.find(b"\r\n", 0, end + 2)
    request_line = data[:line_end]
    if 0 < limit_request_line < len(request_line):
        return None
    parts = request_line.split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1" or not parts[1].startswith(b"/"):
        return None
    path = parts[1].split(b"?", 1)[0]
    if b"%" in path:
        return None  # gunicorn unquotes PATH_INFO; let it
    length = None
    for line in data[line_end + 2:end].split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon or name != name.strip() or not name:
            return None
        name = name.lower()
        if name == b"content-length":
            value = value.strip()
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif name in _UNSAFE_HEADERS:
            return None
        elif name == b"connection" and value.strip().lower() != b"keep-alive":
            return None
    size = end + 4 + (length or 0)
    if size > len(data):
        return None  # body still on its way
    return parts[0].decode("latin-1"), path.decode("latin-1"), size


class PublisherThreadWorker(ThreadWorker):
    """``gthread`` with :meth:`WebhookGate.refusal_before_parsing` applied in the event loop."""

    _date_second = -1
    _answers: dict[tuple[str, bytes], bytes] = {}

    def _answer(self, status: str, body: bytes) -> bytes:
        now = int(time.time())
        if now != self._date_second:
            self._date_second, self._answers = now, {}
        answer = self._answers.get((status, body))
        if answer is None:
            answer = self._answers[(status, body)] = (
                f"HTTP/1.1 {status}\r\nServer: gunicorn\r\nDate: {util.http_date(now)}\r\n"
                f"Connection: keep-alive\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
        return answer

    def _refuse_here(self, conn) -> str | None:
        """Answer the request waiting on ``conn`` here when the gate refuses it from its request
        line: "kept" (the connection stays kept alive), "closed" (it must be closed: a client that
        does not read its answers), or None (not answered: the thread pool serves it)."""
        gate = getattr(self.wsgi, "publisher_gate", None)
        if (gate is None or not self.alive or conn.is_http2 or self.cfg.is_ssl or conn.parser is None
                or not isinstance(conn.client, tuple) or conn.parser.unreader.buf.getvalue()):
            return None
        try:
            data = conn.sock.recv(_PEEK, socket.MSG_PEEK)
        except OSError:
            return None
        request = request_to_refuse(data, self.cfg.limit_request_line)
        if request is None:
            return None
        method, path, size = request
        refusal = gate.refusal_before_parsing(method, path, conn.client[0])
        if refusal is None:
            return None
        answer = self._answer(*refusal)
        try:
            if len(conn.sock.recv(size)) != size:  # MSG_PEEK saw them all: cannot happen
                return "closed"
            return "kept" if conn.sock.send(answer) == len(answer) else "closed"
        except OSError:
            return "closed"

    def on_client_socket_readable(self, conn, client):
        self.keepalived_conns.remove(conn)
        outcome = self._refuse_here(conn)
        if outcome == "kept":
            conn.set_timeout()
            self.keepalived_conns.append(conn)  # still registered with the poller
            return
        self.poller.unregister(client)
        if outcome == "closed":
            self.nr_conns -= 1
            conn.close()
            return
        self.enqueue_req(conn)
