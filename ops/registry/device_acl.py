"""The reader agents' Redis ACL users, kept by the device registry (issue 12, Build 6 — least
privilege at the edge; R-SEC-5, R-DEV-1). The rules themselves are :mod:`streams.device_acl`.

- **Who gets one**: every agent whose lead device (the device whose code is the agent id) holds a
  key. An agent's doors are the devices whose ``agent`` is its id, plus the lead device itself
  (``agent`` empty: a device is its own agent — the agents' default ``agent_id`` is their first
  door). A device without a key (never keyed, or retired) is no agent's door.
- **Where**: on ``REDIS_URL`` (the credential feed) and on the events stream's servers —
  ``EVENTS_REDIS_URL`` when it is another Redis, every node of the cluster (primaries and
  replicas: Redis does not replicate ACLs) with ``EVENTS_REDIS_CLUSTER=1``. Each server gets the
  same user, so it holds wherever the agent's connection lands.
- **When**: after every registry change that touches an agent (a key issued or rotated, a
  device retired, removed or moved to another agent: :func:`changed`, after the commit), by
  ``campuscard device_acl sync``, and by the supervisor (:func:`resync_if_missing` every
  ``SUPERVISE_S``, :func:`sync_all` every ``FULL_SYNC_S``): a Redis restarted without its users
  gets them back within seconds. Only with ``DEVICE_REDIS_ACL=1``.
- **Audited**: each user created, updated or removed is one audit record
  (``device_acl.created|updated|removed``, object: the agent id, with the user, the partition and
  the doors); a sync that changes nothing records nothing.

A key rotation or a retirement also closes the user's open connections (``CLIENT KILL USER``),
so a stolen key stops working on connections made before, not only on new ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from redis.cluster import RedisCluster

from ops import redis_client
from ops.audit import services as audit
from ops.registry.models import Device
from streams import device_acl, names

log = logging.getLogger(__name__)
FULL_SYNC_S = 600


@dataclass(frozen=True)
class AgentUser:
    agent_id: str
    devices: tuple[str, ...]
    key: bytes
    zones: tuple[str, ...] = ()  # the anti-passback zones of its doors (issue 17, Build 5)

    def data(self) -> dict[str, Any]:
        return {
            "user": device_acl.user_name(self.agent_id),
            "partition": names.partition_of(self.agent_id, settings.EVENT_PARTITIONS),
            "devices": list(self.devices),
            **({"zones": list(self.zones)} if self.zones else {}),
        }


def enabled() -> bool:
    return bool(settings.DEVICE_REDIS_ACL)


def expected() -> dict[str, AgentUser]:
    """Every agent that should have a user, from the registry."""
    groups: dict[str, list[str]] = {}
    keys: dict[str, str] = {}
    zones: dict[str, set[str]] = {}
    rows = Device.objects.exclude(key_hex="").values_list("code", "agent", "key_hex", "passback", "passback_area")
    for code, agent, key_hex, passback, area in rows:
        groups.setdefault(agent or code, []).append(code)
        keys[code] = key_hex
        if passback != "off":
            zones.setdefault(agent or code, set()).add(area or code)
    return {
        agent_id: AgentUser(
            agent_id, tuple(sorted(codes)), bytes.fromhex(keys[agent_id]), tuple(sorted(zones.get(agent_id, ())))
        )
        for agent_id, codes in groups.items()
        if agent_id in keys
    }


def agent_of(device: Device) -> str:
    return device.agent or device.code


@contextmanager
def servers() -> Iterator[list[redis.Redis]]:
    """Every Redis the agents log in to (see the module's docstring), closed afterwards."""
    main = redis_client.client()
    opened: list[Any] = [main]
    out = [main]
    try:
        if settings.EVENTS_REDIS_CLUSTER or settings.EVENTS_REDIS_URL != settings.REDIS_URL:
            events = redis_client.stream_client()
            opened.append(events)
            if isinstance(events, RedisCluster):
                out += [events.get_redis_connection(node) for node in events.get_nodes()]
            else:
                out.append(events)
        yield out
    finally:
        for client in opened:
            client.close()


def _apply(server: redis.Redis, user: AgentUser) -> str:
    return device_acl.apply(
        server, user.agent_id, settings.EVENT_PARTITIONS, user.devices, device_acl.password(user.key), user.zones
    )


def _entry(outcome: str, agent_id: str, data: dict[str, Any]) -> audit.Entry:
    return audit.Entry(action=f"device_acl.{outcome}", object_type="device", object_id=agent_id, data=data)


def sync_agent(agent_id: str, *, actor: Any, basis: str, disconnect: bool = False) -> str:
    """Create, update or remove one agent's user on every server (audited); returns what was
    done (``created``, ``updated``, ``removed`` or ``unchanged``). ``disconnect``: also close the
    user's open connections (its key changed or was withdrawn)."""
    user = expected().get(agent_id)
    outcomes = set()
    with servers() as targets:
        for server in targets:
            if user is None:
                outcomes.add("removed" if device_acl.remove(server, agent_id) else "unchanged")
                continue
            outcomes.add(_apply(server, user))
            if disconnect:
                server.execute_command("CLIENT", "KILL", "USER", device_acl.user_name(agent_id))
    outcome = next((o for o in ("removed", "created", "updated") if o in outcomes), "unchanged")
    if outcome != "unchanged":
        data = user.data() if user is not None else {"user": device_acl.user_name(agent_id)}
        audit.record(
            actor=actor,
            action=f"device_acl.{outcome}",
            object_type="device",
            object_id=agent_id,
            basis=basis,
            data={**data, "servers": len(targets)},
        )
    return outcome


def sync_all(*, actor: Any, basis: str) -> dict[str, int]:
    """Every agent's user on every server as the registry says, and no user of an agent the
    registry does not know (audited, one record per agent changed); returns the counts."""
    users = expected()
    changed: dict[str, str] = {}
    with servers() as targets:
        for server in targets:
            for user in users.values():
                outcome = _apply(server, user)
                if outcome != "unchanged" and changed.get(user.agent_id) != "created":
                    changed[user.agent_id] = outcome
            for agent_id in device_acl.device_users(server) - set(users):
                device_acl.remove(server, agent_id)
                changed[agent_id] = "removed"
    entries = [
        _entry(outcome, agent_id, users[agent_id].data() if agent_id in users else {})
        for agent_id, outcome in sorted(changed.items())
    ]
    audit.record_many(actor=actor, basis=basis, entries=entries)
    counts = dict.fromkeys(("created", "updated", "removed"), 0)
    for outcome in changed.values():
        counts[outcome] += 1
    counts["agents"] = len(users)
    return counts


def resync_if_missing() -> bool:
    """The supervisor's check: if any server lacks a user (a Redis restarted empty) or holds one
    the registry does not know, sync them all; returns whether it did."""
    users = set(expected())
    with servers() as targets:
        differs = any(device_acl.device_users(server) != users for server in targets)
    if differs:
        counts = sync_all(actor=None, basis="supervisor: device users differ from the registry (Redis restarted?)")
        log.warning("device ACL users re-synced: %s", counts)
    return differs


def changed(agent_ids: Iterable[str], *, actor: Any, basis: str, disconnect: bool = False) -> None:
    """After the current transaction commits, bring these agents' users up to date. A Redis
    that cannot be reached then is logged; the supervisor's next full sync repairs it."""
    if not enabled():
        return
    ids = sorted({a for a in agent_ids if a})

    def run() -> None:
        for agent_id in ids:
            try:
                sync_agent(agent_id, actor=actor, basis=basis, disconnect=disconnect)
            except (redis.RedisError, OSError) as exc:
                log.error("device ACL user of %s not updated (%s): the supervisor retries", agent_id, exc)

    transaction.on_commit(run)
