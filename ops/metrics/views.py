"""``GET /metrics``: the Prometheus text format, for a scraper that proves itself.

Allowed: ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant time), or no
``Authorization`` header from a client address inside ``METRICS_ALLOWED_NETWORKS`` (the TCP peer,
``REMOTE_ADDR``: a forwarded-for header is not believed). Refused: no credentials from anywhere
else (401, with ``WWW-Authenticate``), a wrong token or scheme (403), and everything while neither
setting is given (403) — the figures describe the campus's doors and alarms, and are nobody's
business by default. Each refusal is one log line.
"""

from __future__ import annotations

import glob
import hmac
import ipaddress
import logging
import os
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from ops import instruments  # noqa: F401 (this worker's zero per desk: the family is always there)
from ops.metrics.collector import CampusCollector
from ops.redis_client import client, stream_client

log = logging.getLogger(__name__)
REALM = 'Bearer realm="campuscard-metrics"'


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    path = settings.PROMETHEUS_MULTIPROC_DIR
    _forget_dead_workers(path)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)  # the web workers' own figures (ops.instruments)
    streams, feed = stream_client(), client()
    try:
        registry.register(
            CampusCollector(
                streams=streams, feed=feed, partitions=settings.EVENT_PARTITIONS, lease_ms=settings.PROCESSOR_LEASE_MS
            )
        )
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encoder(registry)
    finally:
        streams.close()
        feed.close()
    return HttpResponse(body, content_type=content_type)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None if the scrape may proceed, else the answer that refuses it."""
    token: str = settings.METRICS_TOKEN
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = settings.METRICS_ALLOWED_NETWORKS
    address = request.META.get("REMOTE_ADDR", "")
    if not token and not networks:
        return _refuse(403, "metrics are off: set METRICS_TOKEN or METRICS_ALLOWED_NETWORKS", address)
    given = request.headers.get("Authorization")
    if given is not None:
        scheme, _, value = given.partition(" ")
        if token and scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode()):
            return None
        return _refuse(403, "wrong metrics token", address)
    if _inside(address, networks):
        return None
    return _refuse(401, "a metrics token is needed from this address", address)


def _inside(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:  # a unix socket, or no peer address at all
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d
    return any(ip in network for network in networks)


def _refuse(status: int, reason: str, address: str) -> HttpResponse:
    refused = {"event": "metrics.refused", "status": status, "client": address}
    log.warning("metrics scrape refused (%s) from %s", reason, address or "?", extra=refused)
    response = HttpResponse(reason + "\n", status=status, content_type="text/plain; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = REALM
    return response


def _forget_dead_workers(path: str) -> None:
    """Drop the live gauges of workers that died without exiting (killed): their websockets are
    gone. The directory is one host's (one process-id namespace), so a pid that is not running
    here is dead."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        pid = Path(name).stem.rsplit("_", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            mark_process_dead(int(pid), path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
