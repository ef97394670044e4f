"""``campuscard deadletters list|replay``: what the processors set aside, and putting it back.

An entry is dead-lettered only when it can never be processed as it is (malformed) or kept
failing; a dependency that was away (the database, Redis) never sends entries here. Once what
failed them is fixed, ``replay`` puts them back on their partition — the processor then handles
them like any other (a tap already stored is not stored twice). Each replay is audited.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ops.audit import services as audit
from ops.redis_client import stream_client
from streams.consumer import dead_letter_list, replay_dead_letter


class Command(BaseCommand):
    help = "List the dead-lettered reader events, or put them back on the events stream."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="every dead-lettered entry: partition, id, reason, payload start")
        listing.add_argument("--limit", type=int, default=100)
        replay = sub.add_parser("replay", help="put entries back on their partition (audited)")
        replay.add_argument("ids", nargs="*", help="dead-letter ids (as listed); none with --all")
        replay.add_argument("--all", action="store_true", help="every dead-lettered entry")
        replay.add_argument("--basis", required=True, help="why (what was fixed), for the audit log")

    def handle(self, *args, **opts):
        client = stream_client()
        letters = dead_letter_list(client, settings.EVENT_PARTITIONS)
        if opts["action"] == "list":
            for letter in letters[: opts["limit"]]:
                payload = letter.fields.get(b"e", b"")[:80].decode(errors="replace")
                self.stdout.write(f"{letter.partition}\t{letter.id}\t{letter.reason}\t{payload}")
            self.stdout.write(f"{len(letters)} dead-lettered")
            return
        if not opts["all"] and not opts["ids"]:
            raise CommandError("name the ids to replay, or --all")
        chosen = letters if opts["all"] else [x for x in letters if x.id in set(opts["ids"])]
        missing = set(opts["ids"]) - {x.id for x in chosen}
        if missing:
            raise CommandError(f"no such dead letter: {', '.join(sorted(missing))}")
        for letter in chosen:
            new_id = replay_dead_letter(client, letter)
            audit.record(
                actor=None,
                action="events.dead_letter_replay",
                object_type="dead_letter",
                object_id=letter.id,
                basis=opts["basis"],
                data={
                    "partition": letter.partition,
                    "source_id": letter.source_id,
                    "reason": letter.reason,
                    "to": new_id,
                },
            )
        self.stdout.write(f"{len(chosen)} replayed")
