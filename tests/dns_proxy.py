"""A counting DNS proxy in front of a real server: the provider's side of "no zone is ever applied
by two instances at once".

Every UDP and TCP message is relayed to the server unchanged.  A DNS UPDATE (opcode 5) sent over
TCP is held ``hold`` seconds before it is relayed (a slow primary, so a run can be caught in the
middle of its apply), and recorded as ``Update(zone, start, end)``: from its arrival to the
server's answer.  ``overlaps()`` lists the updates of one zone that were in flight at once.  An
update whose sender died while it was held still reaches the server, as it would on a real
network: the zone is then half-applied by a dead instance.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass

import dns.name

UPDATE_OPCODE = 5


@dataclass
class Update:
    zone: str
    start: float
    end: float | None = None


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _read_message(sock: socket.socket) -> bytes | None:
    prefix = _read_exact(sock, 2)
    if prefix is None:
        return None
    return _read_exact(sock, struct.unpack("!H", prefix)[0])


def _opcode_and_zone(wire: bytes) -> tuple[int, str]:
    opcode = (wire[2] >> 3) & 0xF
    try:
        zone = dns.name.from_wire(wire, 12)[0].to_text()
    except Exception:
        zone = "?"
    return opcode, zone


class CountingProxy:
    def __init__(self, upstream: tuple[str, int], hold: float = 0.0) -> None:
        self.upstream = upstream
        self.hold = hold
        self.updates: list[Update] = []
        self.lock = threading.Lock()
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp.listen(64)
        self._stop = threading.Event()

    def start(self) -> "CountingProxy":
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._datagrams, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for sock in (self.tcp, self.udp):
            try:
                sock.close()
            except OSError:
                pass

    # -- what was seen -------------------------------------------------------------------------
    def in_flight(self, zone: str | None = None) -> list[Update]:
        with self.lock:
            return [u for u in self.updates if u.end is None and (zone is None or u.zone == zone)]

    def overlaps(self) -> list[tuple[Update, Update]]:
        """Pairs of updates of one zone in flight at the same time (an unanswered one counts as
        in flight until now)."""
        with self.lock:
            updates = sorted(self.updates, key=lambda u: u.start)
        now = time.time()
        found = []
        for index, first in enumerate(updates):
            for second in updates[index + 1:]:
                if second.zone == first.zone and second.start < (first.end or now):
                    found.append((first, second))
        return found

    # -- relaying ------------------------------------------------------------------------------
    def _datagrams(self) -> None:
        while not self._stop.is_set():
            try:
                data, client = self.udp.recvfrom(65535)
            except OSError:
                return
            threading.Thread(target=self._relay_datagram, args=(data, client), daemon=True).start()

    def _relay_datagram(self, data: bytes, client) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as upstream:
            upstream.settimeout(5)
            try:
                upstream.sendto(data, self.upstream)
                answer = upstream.recv(65535)
                self.udp.sendto(answer, client)
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._relay_stream, args=(client,), daemon=True).start()

    def _relay_stream(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            client.close()
            return
        waiting: list[Update] = []  # updates sent upstream, answer not yet back

        def answers() -> None:
            while True:
                try:
                    message = _read_message(upstream)
                except OSError:
                    message = None
                if message is None:
                    break
                if waiting:
                    update = waiting.pop(0)
                    with self.lock:
                        update.end = time.time()
                try:
                    client.sendall(struct.pack("!H", len(message)) + message)
                except OSError:
                    pass  # the sender is gone (killed): the server applied it all the same

        reader = threading.Thread(target=answers, daemon=True)
        reader.start()
        try:
            while True:
                try:
                    message = _read_message(client)
                except OSError:
                    message = None
                if message is None:
                    break
                opcode, zone = _opcode_and_zone(message)
                if opcode == UPDATE_OPCODE:
                    update = Update(zone, time.time())
                    with self.lock:
                        self.updates.append(update)
                    waiting.append(update)
                    time.sleep(self.hold)
                upstream.sendall(struct.pack("!H", len(message)) + message)
            deadline = time.time() + 30  # the answer to a held update still comes back
            while waiting and time.time() < deadline:
                time.sleep(0.01)
        finally:
            for sock in (upstream, client):
                try:
                    sock.close()
                except OSError:
                    pass
