"""The reader agent's configuration: a JSON or TOML file (chosen by extension; ``.toml`` is TOML,
anything else JSON).

.. code-block:: toml

    redis_url = "redis://10.0.0.5:6379/0"
    state_dir = "/var/lib/campuscard-agent"   # credential cache, outbox, boot epochs
    heartbeat_s = 10
    feed_keys = ["…64 hex digits…"]            # the credential feed's public key(s)
    redis_auth = "device"                     # log in as the agent's own Redis user (default "url")

    [[doors]]
    device_id = "G-E-01"                      # as registered on the server (R-DEV-1)
    key_hex = "…64 hex digits…"               # the device's HMAC key, from registration
    kind = "pedestrian_gate"                  # streams.cards.DeviceKind
    building = ""                             # building code (dorm doors); "" or absent: none
    direction = "in"                          # in | out | none
    source = "pcsc"                           # pcsc | none (taps only injected, e.g. tests)
    reader = "Virtual PCD 00 00"              # PC/SC reader name (source = "pcsc")
    # door policy (all optional, see readers.decide.Door): local campus times "HH:MM"
    area = "campus"                           # anti-passback area shared with other gates
    passback = "hard"                         # off | soft | hard
    passback_reset = "04:00"                  # "" : never
    curfew = "23:00-06:00"                    # dorm doors: entries then are flagged late_return
    schedule = ["07:00-22:30"]                # open windows; absent: always open
    # door supervision (issue 17, readers/doors.py), for doors with door inputs
    unlock_s = 5                              # the lock is released this long after an allowed tap
    held_open_s = 30                          # open longer than this: door_held_open
    site = "东门"                              # optional: this door's site, if not the agent's

Optional ``site`` (issue 18, Build 2; R-DEV-1): the site NIC approved the agent's doors at (the
device's 地点分组, or its 位置 if it has none), sent in every heartbeat with the agent's own
IP address; the server alerts "moved without approval" when either differs from what NIC approved.

Optional: ``outbox_capacity`` (100000), ``forward_batch`` (500); for the events stream (issue 14):
``agent_id`` (the first door's device id; picks the agent's partition), ``event_partitions``
(16, as the server's ``EVENT_PARTITIONS``), ``events_redis_url`` (``redis_url``; on a Redis
Cluster any node), ``events_cluster`` (false), ``wait_replicas`` (0; 1 on a Redis with replicas:
an event leaves the outbox only once a replica holds it; with ``confirm = "redis"`` only),
``confirm`` (``"commit"``: an event leaves the outbox once the server's acknowledgement says it
is in the database; ``"redis"``: once Redis took it), ``redis_auth`` (``"url"``: log in as
the Redis URLs say, if at all; ``"device"``: as the agent's own ACL user ``device:<agent_id>``
with the password derived from its lead door's key — the door whose ``device_id`` is the
``agent_id`` — see :mod:`streams.device_acl`; issue 12, Build 6). Required: ``feed_keys``, the credential
feed's Ed25519 public keys (64 hex digits each; ``campuscard feedkey show`` prints them): the
agent applies only card changes signed by one of them. A bad value raises
``ValueError`` naming the field (``doors[2].key_hex: …``).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

from readers.decide import Door, Passback
from readers.doors import HELD_OPEN_S, UNLOCK_S
from streams import device_acl
from streams.cards import DeviceKind
from streams.reasons import Direction

SOURCES = ("pcsc", "simulator", "none")
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_PUBLIC_KEY = re.compile(r"^[0-9A-Fa-f]{64}$")
MIN_KEY_BYTES = 16


@dataclass(frozen=True)
class DoorConfig:
    device_id: str
    key: bytes = field(repr=False)
    kind: DeviceKind
    building: str | None = None
    direction: Direction = Direction.NONE
    source: str = "none"
    reader: str | None = None
    area: str | None = None
    passback: Passback = "off"
    passback_reset: time | None = time(4, 0)
    curfew: tuple[time, time] | None = None
    schedule: tuple[tuple[time, time], ...] | None = None
    unlock_s: float = UNLOCK_S
    held_open_s: float = HELD_OPEN_S
    site: str | None = None  # issue 18, Build 2: the door's own site (else the agent's)

    @property
    def door(self) -> Door:
        return Door(
            device_id=self.device_id,
            kind=self.kind,
            building=self.building,
            area=self.area,
            passback=self.passback,
            passback_reset=self.passback_reset,
            curfew=self.curfew,
            schedule=self.schedule,
        )


@dataclass(frozen=True)
class AgentConfig:
    redis_url: str
    state_dir: Path
    doors: tuple[DoorConfig, ...]
    heartbeat_s: float = 10.0
    outbox_capacity: int = 100_000
    forward_batch: int = 500
    agent_id: str = ""
    event_partitions: int = 16
    events_redis_url: str = ""
    events_cluster: bool = False
    wait_replicas: int = 0
    confirm: str = "commit"
    feed_keys: tuple[str, ...] = ()
    redis_auth: str = "url"
    site: str = ""  # issue 18, Build 2: where the installer put the agent (sent in heartbeats)

    def redis_login(self) -> dict[str, str]:
        """``username``/``password`` for every Redis connection of the agent (issue 12, Build 6;
        R-SEC-5): its own ACL user with ``redis_auth = "device"``; none otherwise (the URL may
        carry them)."""
        if self.redis_auth != "device":
            return {}
        return {
            "username": device_acl.user_name(self.agent_id),
            "password": device_acl.password(self.door(self.agent_id).key),
        }

    def door(self, device_id: str) -> DoorConfig:
        for d in self.doors:
            if d.device_id == device_id:
                return d
        raise KeyError(device_id)


def _get(
    data: Mapping[str, Any],
    name: str,
    where: str,
    kind: type | tuple[type, ...],
    *,
    required: bool = True,
    default: Any = None,
) -> Any:
    if name not in data or data[name] is None:
        if required:
            raise ValueError(f"{where}{name}: missing")
        return default
    value = data[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ValueError(f"{where}{name}: expected {_kind_name(kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise ValueError(f"{where}{name}: expected {_kind_name(kind)}, got {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {"str": "a string", "int": "an integer", "float": "a number", "list": "a list", "dict": "a table"}.get(
            k.__name__, k.__name__
        )
        for k in kinds
    )


def _door(data: Any, i: int) -> DoorConfig:
    where = f"doors[{i}]."
    if not isinstance(data, Mapping):
        raise ValueError(f"doors[{i}]: expected a table/object, got {data!r}")
    unknown = set(data) - {
        "device_id",
        "key_hex",
        "kind",
        "building",
        "direction",
        "source",
        "reader",
        "area",
        "passback",
        "passback_reset",
        "curfew",
        "schedule",
        "unlock_s",
        "held_open_s",
        "site",
    }
    if unknown:
        raise ValueError(f"{where}{sorted(unknown)[0]}: unknown field")
    device_id = _get(data, "device_id", where, str)
    if not _DEVICE_ID.match(device_id):
        raise ValueError(f"{where}device_id: 1–32 of A-Z a-z 0-9 _ . -, got {device_id!r}")
    key_hex = _get(data, "key_hex", where, str)
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        raise ValueError(f"{where}key_hex: not hexadecimal") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"{where}key_hex: at least {MIN_KEY_BYTES} bytes ({2 * MIN_KEY_BYTES} hex digits), got {len(key)}"
        )
    kind_text = _get(data, "kind", where, str)
    try:
        kind = DeviceKind(kind_text)
    except ValueError:
        raise ValueError(f"{where}kind: one of {[k.value for k in DeviceKind]}, got {kind_text!r}") from None
    building = _get(data, "building", where, str, required=False) or None
    if kind == DeviceKind.DORM_DOOR and building is None:
        raise ValueError(f"{where}building: required for a dorm_door")
    direction_text = _get(data, "direction", where, str, required=False, default="none")
    try:
        direction = Direction(direction_text)
    except ValueError:
        raise ValueError(f"{where}direction: one of {[d.value for d in Direction]}, got {direction_text!r}") from None
    source = _get(data, "source", where, str, required=False, default="none")
    if source not in SOURCES:
        raise ValueError(f"{where}source: one of {list(SOURCES)}, got {source!r}")
    reader = _get(data, "reader", where, str, required=False) or None
    if source == "pcsc" and reader is None:
        raise ValueError(f"{where}reader: required when source is 'pcsc'")
    area = _get(data, "area", where, str, required=False) or None
    passback = _get(data, "passback", where, str, required=False, default="off")
    if passback not in ("off", "soft", "hard"):
        raise ValueError(f"{where}passback: one of off, soft, hard, got {passback!r}")
    reset_text = _get(data, "passback_reset", where, str, required=False, default="04:00")
    passback_reset = _clock(reset_text, f"{where}passback_reset") if reset_text else None
    curfew_text = _get(data, "curfew", where, str, required=False)
    curfew = _window(curfew_text, f"{where}curfew") if curfew_text else None
    schedule_data = _get(data, "schedule", where, list, required=False)
    schedule = (
        None
        if schedule_data is None
        else tuple(_window(w, f"{where}schedule[{j}]") for j, w in enumerate(schedule_data))
    )
    config = DoorConfig(
        device_id=device_id,
        key=key,
        kind=kind,
        building=building,
        direction=direction,
        source=source,
        reader=reader,
        area=area,
        passback=passback,
        passback_reset=passback_reset,
        curfew=curfew,
        schedule=schedule,
        unlock_s=_seconds(data, "unlock_s", where, UNLOCK_S),
        held_open_s=_seconds(data, "held_open_s", where, HELD_OPEN_S),
        site=_site(data, where) or None,
    )
    try:
        config.door  # noqa: B018 - Door validates its own policy
    except ValueError as exc:
        raise ValueError(f"doors[{i}]: {exc}") from None
    return config


def _site(data: Mapping[str, Any], where: str) -> str:
    """The optional ``site`` (issue 18, Build 2): 1–40 characters, as the heartbeat carries it."""
    site = _get(data, "site", where, str, required=False, default="").strip()
    if len(site) > 40:
        raise ValueError(f"{where}site: at most 40 characters, got {len(site)}")
    return site


def _seconds(data: Mapping[str, Any], name: str, where: str, default: float) -> float:
    seconds = float(_get(data, name, where, (int, float), required=False, default=default))
    if not 0 < seconds <= 3600:
        raise ValueError(f"{where}{name}: must be > 0 and <= 3600 seconds, got {seconds:g}")
    return seconds


def _clock(text: Any, where: str) -> time:
    if not isinstance(text, str) or not re.fullmatch(r"\d{1,2}:\d{2}", text.strip()):
        raise ValueError(f"{where}: expected a local time HH:MM, got {text!r}")
    hour, minute = (int(p) for p in text.strip().split(":"))
    if hour > 23 or minute > 59:
        raise ValueError(f"{where}: not a time of day: {text!r}")
    return time(hour, minute)


def _window(text: Any, where: str) -> tuple[time, time]:
    if not isinstance(text, str) or text.count("-") != 1:
        raise ValueError(f"{where}: expected HH:MM-HH:MM, got {text!r}")
    start, end = (_clock(p, where) for p in text.split("-"))
    if start == end:
        raise ValueError(f"{where}: an empty window {text!r}")
    return start, end


def parse_config(data: Mapping[str, Any], *, base_dir: Path | None = None) -> AgentConfig:
    """Validate a config mapping (already parsed JSON/TOML). Relative ``state_dir`` paths are
    taken relative to ``base_dir`` (the config file's folder) if given."""
    if not isinstance(data, Mapping):
        raise ValueError(f"config: expected a table/object, got {type(data).__name__}")
    unknown = set(data) - {
        "redis_url",
        "state_dir",
        "heartbeat_s",
        "doors",
        "outbox_capacity",
        "forward_batch",
        "agent_id",
        "event_partitions",
        "events_redis_url",
        "events_cluster",
        "wait_replicas",
        "confirm",
        "feed_keys",
        "redis_auth",
        "site",
    }
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown field")
    redis_url = _redis_url(data, "redis_url", required=True)
    events_redis_url = _redis_url(data, "events_redis_url", required=False) or redis_url
    partitions = _get(data, "event_partitions", "", int, required=False, default=16)
    if not 1 <= partitions <= 1024:
        raise ValueError(f"event_partitions: must be 1..1024, got {partitions}")
    replicas = _get(data, "wait_replicas", "", int, required=False, default=0)
    if not 0 <= replicas <= 5:
        raise ValueError(f"wait_replicas: must be 0..5, got {replicas}")
    confirm = _get(data, "confirm", "", str, required=False, default="commit")
    if confirm not in ("commit", "redis"):
        raise ValueError(f"confirm: must be 'commit' or 'redis', got {confirm!r}")
    events_cluster = _get(data, "events_cluster", "", bool, required=False, default=False)
    feed_keys = _feed_keys(data)
    state_dir = Path(_get(data, "state_dir", "", str))
    if not state_dir.is_absolute() and base_dir is not None:
        state_dir = base_dir / state_dir
    heartbeat_s = float(_get(data, "heartbeat_s", "", (int, float), required=False, default=10))
    if not heartbeat_s > 0:
        raise ValueError(f"heartbeat_s: must be > 0, got {heartbeat_s}")
    capacity = _get(data, "outbox_capacity", "", int, required=False, default=100_000)
    if capacity < 1:
        raise ValueError(f"outbox_capacity: must be >= 1, got {capacity}")
    batch = _get(data, "forward_batch", "", int, required=False, default=500)
    if not 1 <= batch <= 10_000:
        raise ValueError(f"forward_batch: must be 1..10000, got {batch}")
    doors_data = _get(data, "doors", "", list)
    if not doors_data:
        raise ValueError("doors: at least one door is required")
    doors = tuple(_door(d, i) for i, d in enumerate(doors_data))
    agent_id = _get(data, "agent_id", "", str, required=False, default=doors[0].device_id)
    if not _DEVICE_ID.match(agent_id):
        raise ValueError(f"agent_id: expected 1-32 letters, digits, '_', '.' or '-', got {agent_id!r}")
    seen: set[str] = set()
    readers: dict[str, str] = {}
    for i, d in enumerate(doors):
        if d.device_id in seen:
            raise ValueError(f"doors[{i}].device_id: {d.device_id!r} appears twice")
        seen.add(d.device_id)
        if d.reader is not None:
            if d.reader in readers:
                raise ValueError(f"doors[{i}].reader: {d.reader!r} is already the reader of {readers[d.reader]}")
            readers[d.reader] = d.device_id
    redis_auth = _redis_auth(data, agent_id, seen, (redis_url, events_redis_url))
    return AgentConfig(
        redis_url=redis_url,
        state_dir=state_dir,
        doors=doors,
        heartbeat_s=heartbeat_s,
        outbox_capacity=capacity,
        forward_batch=batch,
        agent_id=agent_id,
        event_partitions=partitions,
        events_redis_url=events_redis_url,
        events_cluster=events_cluster,
        wait_replicas=replicas,
        confirm=confirm,
        feed_keys=feed_keys,
        redis_auth=redis_auth,
        site=_site(data, ""),
    )


def _redis_auth(data: Mapping[str, Any], agent_id: str, devices: set[str], urls: tuple[str, ...]) -> str:
    """``url`` or ``device`` (issue 12, Build 6): the device login needs the lead door's key (the
    door whose id is the agent id) and cannot be combined with a login in the URLs."""
    auth = _get(data, "redis_auth", "", str, required=False, default="url")
    if auth not in ("url", "device"):
        raise ValueError(f"redis_auth: must be 'url' or 'device', got {auth!r}")
    if auth == "device":
        if agent_id not in devices:
            raise ValueError(f"redis_auth: 'device' needs agent_id to be one of the doors, got {agent_id!r}")
        for url in urls:
            if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
                raise ValueError("redis_auth: 'device' logs in itself: remove the user/password from the Redis URL")
    return auth


def _feed_keys(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The credential feed's public keys this agent trusts (issue 12): required — an agent that
    cannot check who signed a card change would take one from anyone who can write to Redis."""
    keys = _get(data, "feed_keys", "", list)
    if not keys:
        raise ValueError("feed_keys: at least one public key of the credential feed is required")
    out = []
    for i, key in enumerate(keys):
        if not isinstance(key, str) or not _PUBLIC_KEY.match(key):
            raise ValueError(f"feed_keys[{i}]: expected 64 hex digits (an Ed25519 public key), got {key!r}")
        out.append(key.lower())
    return tuple(out)


def _redis_url(data: Mapping[str, Any], name: str, *, required: bool) -> str:
    url = _get(data, name, "", str, required=required, default="")
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"{name}: expected redis://, rediss:// or unix://, got {url!r}")
    if required and not url:
        raise ValueError(f"{name}: expected redis://, rediss:// or unix://, got {url!r}")
    return url


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate a ``.toml`` or ``.json`` config file."""
    path = Path(path)
    text = path.read_bytes()
    try:
        data = tomllib.loads(text.decode()) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {exc}") from None
    return parse_config(data, base_dir=path.parent)
