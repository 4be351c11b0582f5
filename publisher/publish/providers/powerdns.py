"""PowerDNS Authoritative through its HTTP API (``/api/v1/servers/<id>/zones``).

Reading is one GET of the zone with its RRsets; applying is ONE PATCH carrying every changed RRset
(``REPLACE`` with the full new RRset, or ``DELETE``) plus the new SOA, which PowerDNS applies in a
single backend transaction.  Only a plan larger than PowerDNS's request limit
(``webserver-max-bodysize``, 2 MB: about 20,000 RRsets) is split into several PATCHes, each
bumping the serial like the RFC 2136 provider's messages, with a serial check between them.  The API has no conditional PATCH, so the concurrency guard is a serial
check (``GET ?rrsets=false``) right before the PATCH: a change made in that short window would not
be seen.  Zones are created as ``Native`` with ``soa_edit_api`` empty, so the serial served is the
one the publisher sets, and with all their RRsets in the creating POST when it fits the body limit.

For thousands of zones (``Capabilities.bulk_serials``): every serial comes from ONE listing of the
server's zones, and one keep-alive session carries every request of a run.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import requests

from publisher.model import DELETE, Change, Record
from publisher.publish.plan import diff_records
from publisher.publish.providers.base import (Capabilities, ConcurrentChangeError, Option, OptionSchema, ProviderError,
                                              Snapshot, schema)
from publisher.publish.soa import part_serial, serial_after, serial_of
from publisher.rdata import RdataError, canonical_rdata

OPTIONS = OptionSchema(schema(
    api_url=Option(str, required=True), api_key=Option(str, required=True, secret=True), server_id=Option(str),
    timeout=Option(float), kind=Option(str), nameservers=Option(list),
))

RECORD_TYPES = frozenset({
    "A", "AAAA", "AFSDB", "CAA", "CDNSKEY", "CDS", "CERT", "CNAME", "DHCID", "DNAME", "DNSKEY", "DS",
    "HINFO", "HTTPS", "IPSECKEY", "KX", "LOC", "MX", "NAPTR", "NS", "OPENPGPKEY", "PTR", "RP", "SMIMEA",
    "SOA", "SPF", "SRV", "SSHFP", "SVCB", "TLSA", "TXT", "URI",
})


class PowerDNSProvider:
    """A PowerDNS Authoritative server reached through its HTTP API."""

    def __init__(self, name: str, api_url: str, api_key: str, server_id: str = "localhost",
                 timeout: float = 30.0, kind: str = "Native", nameservers: Sequence[str] = (),
                 max_body_size: int = 2_000_000) -> None:
        self.name = name
        self.api_url = api_url.rstrip("/")
        if not self.api_url.endswith("/api/v1"):
            self.api_url += "/api/v1"
        self.server_id = server_id
        self.timeout = timeout
        self.kind = kind
        self.nameservers = tuple(nameservers)
        self.max_body_size = max_body_size
        self.capabilities = Capabilities(record_types=RECORD_TYPES, can_create_zones=True,
                                         configures_secondaries=True, bulk_serials=True,
                                         creates_filled_zones=True, parallel_applies=4)
        # One session for a run's requests: keep-alive where the server allows it (PowerDNS 4.7's
        # webserver answers "Connection: close" to every request, measured), and the environment's
        # proxy and CA settings looked up once, not on every request (for thousands of requests
        # that lookup cost more than the requests themselves).
        self._session = requests.Session()
        self._session.headers.update({"X-API-Key": api_key, "Accept": "application/json"})
        settings = self._session.merge_environment_settings(self.api_url, {}, None, None, None)
        self._session.proxies, self._session.verify = settings["proxies"], settings["verify"]
        if settings.get("cert"):
            self._session.cert = settings["cert"]
        self._session.trust_env = False
        self._thread_sessions = threading.local()  # parallel applies: a session (connection) per thread
        self._owner = threading.get_ident()

    def __repr__(self) -> str:  # the API key stays out of logs
        return f"PowerDNSProvider(name={self.name!r}, api_url={self.api_url!r}, server_id={self.server_id!r})"

    # ------------------------------------------------------------------ HTTP

    def _http(self) -> requests.Session:
        """The keep-alive session of the calling thread (a Session is not shared between threads);
        the others copy the first one's headers and hooks."""
        if threading.get_ident() == self._owner:
            return self._session
        session = getattr(self._thread_sessions, "session", None)
        if session is None:
            session = self._thread_sessions.session = requests.Session()
            session.headers.update(self._session.headers)
            session.hooks = self._session.hooks
            session.proxies, session.verify, session.cert = (self._session.proxies, self._session.verify,
                                                             self._session.cert)
            session.trust_env = False
        return session

    def _zone_url(self, origin: str = "") -> str:
        base = f"{self.api_url}/servers/{quote(self.server_id, safe='')}/zones"
        # PowerDNS zone ids are the name with '/' escaped as '=2F'.
        return f"{base}/{quote(origin.replace('/', '=2F'), safe='.=')}" if origin else base

    def _request(self, method: str, url: str, origin: str, what: str, **kwargs: Any) -> requests.Response | None:
        """The response, None for 404 (zone absent); ProviderError for anything else that failed."""
        try:
            response = self._http().request(method, url, timeout=self.timeout, **kwargs)
        except requests.ConnectionError:
            raise self._error(origin, f"{what}: cannot connect to {self.api_url} (server down?)") from None
        except requests.Timeout:
            raise self._error(origin, f"{what}: no answer within {self.timeout:g} s") from None
        except requests.RequestException as error:
            raise self._error(origin, f"{what}: {type(error).__name__}") from None
        if response.status_code == 404 and method in ("GET", "DELETE"):
            return None
        if response.status_code >= 400:
            raise self._error(origin, f"{what}: HTTP {response.status_code}: {self._api_message(response)}")
        return response

    @staticmethod
    def _api_message(response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.text[:300].strip() or response.reason
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])[:500]
        return response.reason

    def _error(self, origin: str, what: str) -> ProviderError:
        return ProviderError(f"provider {self.name!r} (PowerDNS {self.api_url}), zone {origin}: {what}")

    # ------------------------------------------------------------------ reading

    def serial(self, origin: str) -> int | None:
        response = self._request("GET", self._zone_url(origin), origin, "reading the serial",
                                 params={"rrsets": "false"})
        return None if response is None else int(response.json().get("serial", 0))

    def serials(self, origins: Sequence[str]) -> Mapping[str, int | None]:
        """Every zone's serial from one listing, ``GET /servers/{server_id}/zones?dnssec=false``:
        "List all Zones in a server", each Zone object with its "serial" ("The SOA serial
        number"; rrsets are omitted on the list endpoint), and ``dnssec=false`` leaves out the
        DNSSEC fields, which "will make the query a lot faster"
        (https://doc.powerdns.com/authoritative/http-api/zone.html)."""
        where = origins[0] if origins else "(all zones)"
        response = self._request("GET", self._zone_url(), where, "listing the zones' serials",
                                 params={"dnssec": "false"})
        try:
            listed = {str(zone["name"]).lower(): int(zone["serial"]) for zone in response.json()}
        except (ValueError, TypeError, KeyError) as error:
            raise self._error(where, f"listing the zones' serials: unexpected answer ({error})") from None
        return {origin: listed.get(origin.lower()) for origin in origins}

    def read(self, origin: str) -> Snapshot | None:
        response = self._request("GET", self._zone_url(origin), origin, "reading the zone")
        if response is None:
            return None
        records: list[Record] = []
        soa: Record | None = None
        for rrset in response.json().get("rrsets", ()):
            owner, rtype, ttl = rrset["name"].lower(), rrset["type"], int(rrset["ttl"])
            for item in rrset.get("records", ()):
                if item.get("disabled"):
                    continue
                try:
                    data = canonical_rdata(rtype, item["content"], origin)
                except (RdataError, ValueError, OSError) as error:
                    raise self._error(origin, f"cannot understand {owner} {rtype}: {error}") from None
                if rtype == "SOA":
                    soa = Record(owner, rtype, ttl, data)
                else:
                    records.append(Record(owner, rtype, ttl, data))
        serial = int(soa.data.split()[2]) if soa is not None else int(response.json().get("serial", 0))
        return Snapshot(tuple(records), serial, soa)

    # ------------------------------------------------------------------ writing

    def apply(self, origin: str, changes: Sequence[Change], soa: Record, expected_serial: int | None) -> int:
        current = self.serial(origin)
        if current is None:
            raise self._error(origin, "zone does not exist (create it first)")
        if expected_serial is not None and current != expected_serial:
            raise ConcurrentChangeError(
                f"provider {self.name!r}, zone {origin}: serial is {current}, expected {expected_serial}: "
                f"the zone changed since it was read; nothing applied")
        bodies = self._pack([json.dumps(self._rrset(change)) for change in changes if change.type != "SOA"])
        target, start = serial_of(soa.data), current
        for index, body in enumerate(bodies, start=1):
            if index > 1:  # between PATCHes: did anyone else change the zone?
                seen = self.serial(origin)
                if seen != current:
                    raise ConcurrentChangeError(
                        f"provider {self.name!r}, zone {origin}: serial changed to {seen} during the apply "
                        f"(someone else updated the zone); earlier parts were applied, plan again")
            serial = part_serial(start, index, len(bodies), target)
            new_soa = _replace(soa.name, "SOA", soa.ttl, (_with_serial(soa.data, serial),))
            payload = '{"rrsets": [' + ", ".join(body + [json.dumps(new_soa)]) + "]}"
            self._request("PATCH", self._zone_url(origin), origin,
                          "applying changes" + (f" (part {index}/{len(bodies)})" if len(bodies) > 1 else ""),
                          data=payload.encode(), headers={"Content-Type": "application/json"})
            current = serial
        served = self.serial(origin)
        return current if served is None else served

    def _pack(self, rrsets: list[str]) -> list[list[str]]:
        """RRset changes in as few PATCH bodies as fit PowerDNS's ``webserver-max-bodysize``
        (2 MB by default); one PATCH is one transaction, so a small plan is all or nothing."""
        budget = self.max_body_size - 4096  # the SOA and the JSON frame
        bodies: list[list[str]] = [[]]
        used = 0
        for rrset in rrsets:
            size = len(rrset) + 2
            if used + size > budget and bodies[-1]:
                bodies.append([])
                used = 0
            bodies[-1].append(rrset)
            used += size
        return bodies

    @staticmethod
    def _rrset(change: Change) -> dict[str, Any]:
        if change.action == DELETE:
            return {"name": change.name, "type": change.type, "changetype": "DELETE"}
        return _replace(change.name, change.type, change.ttl, change.new)

    # ------------------------------------------------------------------ zones

    def create_zone(self, origin: str, soa: Record, records: Sequence[Record]) -> int:
        """The zone with ``soa`` and all of ``records`` in one POST (``creates_filled_zones``);
        a zone over the request limit is created with its apex NS, then filled by ``apply``.
        Returns the serial served."""
        rrsets = [self._rrset(change) for change in diff_records(records, ()) if change.type != "SOA"]
        body = {
            "name": origin,
            "kind": self.kind,
            "nameservers": [],  # given as an RRset, with the TTL the publisher wants
            "soa_edit_api": "",
            "rrsets": [_replace(soa.name, "SOA", soa.ttl, (soa.data,))] + rrsets,
        }
        if not any(r.name == origin and r.type == "NS" for r in records) and self.nameservers:
            body["nameservers"] = list(self.nameservers)
        payload = json.dumps(body)
        rest: list[Record] = []
        if len(payload) > self.max_body_size:
            apex_ns = [r for r in records if r.name == origin and r.type == "NS"]
            rest = list(records)
            body["rrsets"] = body["rrsets"][:1] + [self._rrset(c) for c in diff_records(apex_ns, ())]
            payload = json.dumps(body)
        # rrsets=false: the answer leaves out the zone's RRsets, sent back for nothing otherwise.
        response = self._request("POST", self._zone_url(), origin, "creating the zone", params={"rrsets": "false"},
                                 data=payload.encode(), headers={"Content-Type": "application/json"})
        try:
            served = int(response.json().get("serial", serial_of(soa.data)))
        except (ValueError, AttributeError):
            served = serial_of(soa.data)
        if not rest:
            return served
        created = self.read(origin)
        filled = _with_serial(soa.data, serial_after(served))  # newer than the nearly empty zone
        return self.apply(origin, diff_records(rest, created.records if created else ()),
                          soa._replace(data=filled), served)

    def delete_zone(self, origin: str) -> None:
        self._request("DELETE", self._zone_url(origin), origin, "deleting the zone")

    # ------------------------------------------------------------------ secondaries

    def secondaries(self, origin: str) -> tuple[str, ...]:
        """The IPs allowed to transfer the zone (its ``ALLOW-AXFR-FROM`` metadata)."""
        response = self._request("GET", f"{self._zone_url(origin)}/metadata/ALLOW-AXFR-FROM", origin,
                                 "reading secondaries")
        return () if response is None else tuple(sorted(response.json().get("metadata", [])))

    def set_secondaries(self, origin: str, ips: Sequence[str]) -> None:
        """Zone metadata ``ALLOW-AXFR-FROM`` and ``ALSO-NOTIFY`` (PowerDNS sends NOTIFY only for
        zones of kind Master/Primary; the transfer ACL applies to every kind)."""
        wanted = sorted(set(ips))
        for kind in ("ALLOW-AXFR-FROM", "ALSO-NOTIFY"):
            url = f"{self._zone_url(origin)}/metadata/{kind}"
            if wanted:
                self._request("PUT", url, origin, f"setting {kind}", json={"kind": kind, "metadata": wanted})
            else:
                self._request("DELETE", url, origin, f"clearing {kind}")


def _with_serial(soa_data: str, serial: int) -> str:
    fields = soa_data.split(" ")
    fields[2] = str(serial)
    return " ".join(fields)


def _replace(name: str, rtype: str, ttl: int, datas: Sequence[str]) -> dict[str, Any]:
    return {
        "name": name,
        "type": rtype,
        "ttl": ttl,
        "changetype": "REPLACE",
        "records": [{"content": data, "disabled": False} for data in datas],
    }
