"""``campuscard reader``: run a reader agent (the edge: decides locally from its cached
credential list, stores and forwards every event, signs with the device key).

Either from a config file (``--config agent.toml``, see docs/readers.md), or for devices
registered here (``--device G-E-01 --reader "Virtual PCD 00 00"``): the keys come from the
device registry, so NIC never has to copy them by hand onto this host."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops.paths import var_dir
from ops.pipeline import feed_keys
from ops.registry.models import Device
from readers.agent.agent import main


class Command(BaseCommand):
    help = "Run a reader agent for one or more doors."

    def add_arguments(self, parser):
        parser.add_argument("--config", type=Path, help="agent config (.toml / .json)")
        parser.add_argument(
            "--device", action="append", default=[], help="registered device code (repeat for several doors)"
        )
        parser.add_argument(
            "--reader", action="append", default=[], help="PC/SC reader name for each --device, in order"
        )
        parser.add_argument("--direction", default="in", choices=["in", "out", "none"])
        parser.add_argument("--heartbeat", type=float, default=10.0)

    def handle(self, *args, **opts):

        if opts["config"]:
            raise SystemExit(main([str(opts["config"])]))
        if not opts["device"]:
            raise CommandError("give --config FILE or at least one --device CODE")
        if opts["reader"] and len(opts["reader"]) != len(opts["device"]):
            raise CommandError("give one --reader per --device")
        doors = []
        for index, code in enumerate(opts["device"]):
            device = Device.objects.select_related("building").filter(code=code).first()
            if device is None or not device.key_hex:
                raise CommandError(f"设备 {code} 未登记或没有密钥（R-DEV-1：先由网信中心登记）")
            door = {
                "device_id": code,
                "key_hex": device.key_hex,
                "kind": device.kind,
                "building": device.building.code if device.building else None,
                "direction": opts["direction"],
                "passback": device.passback,
                "area": device.passback_area or None,
            }
            building = device.building
            if building is not None and building.curfew_start and building.curfew_end:
                door["curfew"] = f"{building.curfew_start:%H:%M}-{building.curfew_end:%H:%M}"
            if opts["reader"]:
                door.update(source="pcsc", reader=opts["reader"][index])
            doors.append(door)
        feed_keys.signer()  # the first key, if the relay has not made it yet
        config = {
            "redis_url": settings.REDIS_URL,
            "heartbeat_s": opts["heartbeat"],
            "state_dir": str(var_dir() / "agent" / "-".join(opts["device"])),
            "doors": doors,
            "feed_keys": feed_keys.trusted_public_keys(),  # from this host's key ring
        }
        if settings.DEVICE_REDIS_ACL:  # its own Redis user (issue 12, Build 6): the first door leads
            lead = opts["device"][0]
            others = Device.objects.filter(code__in=opts["device"][1:]).exclude(agent=lead)
            if others.exists():
                raise CommandError(
                    f"设备 {', '.join(d.code for d in others)} 不属于读卡控制器 {lead}（先登记其 agent）"
                )
            config.update(agent_id=lead, redis_auth="device")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(config, handle)
        try:
            raise SystemExit(main([handle.name]))
        finally:
            Path(handle.name).unlink(missing_ok=True)
