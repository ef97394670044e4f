"""``campuscard device_acl sync|show``: the reader agents' Redis ACL users (issue 12, Build 6;
R-SEC-5). ``sync`` makes every agent's user on every Redis as the device registry says and removes
users of agents it does not know (each change audited) — after a Redis restarted without them,
or to check; ``show`` lists the agents, their partitions and doors, and which servers hold them.
Runs whatever ``DEVICE_REDIS_ACL`` says (it is the operator's explicit request)."""

from __future__ import annotations

import redis
from django.core.management.base import BaseCommand, CommandError

from ops.registry import device_acl as acl
from streams import device_acl


class Command(BaseCommand):
    help = "Sync or show the reader agents' Redis ACL users."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sync = sub.add_parser("sync", help="make every agent's user on every Redis (audited)")
        sync.add_argument("--basis", default="campuscard device_acl sync", help="why, for the audit log")
        sub.add_parser("show", help="the agents, their partitions and doors, and their users")

    def handle(self, *args, **opts):
        try:
            if opts["action"] == "sync":
                counts = acl.sync_all(actor=None, basis=opts["basis"])
                self.stdout.write(
                    f"{counts['agents']} agents: {counts['created']} users created, {counts['updated']} updated, "
                    f"{counts['removed']} removed"
                )
                return
            with acl.servers() as servers:
                present = [device_acl.device_users(s) for s in servers]
            for user in acl.expected().values():
                data = user.data()
                held = sum(user.agent_id in p for p in present)
                self.stdout.write(
                    f"{data['user']}\tpartition {data['partition']}\t{','.join(user.devices)}\t"
                    f"on {held}/{len(present)} servers"
                )
        except (redis.RedisError, OSError) as exc:
            raise CommandError(f"Redis: {exc}") from None
