"""``campuscard feedkey show|new|activate``: the credential feed's signing keys (issue 12,
Build 6; the rotation is described in :mod:`ops.pipeline.feed_keys`). NIC runs it on the host
that holds the key ring (``CREDENTIAL_KEYRING``); every change is audited."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ops.pipeline import feed_keys


class Command(BaseCommand):
    help = "Show, make or activate the credential feed's signing keys (Ed25519)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("show", help="every key: id, state, public key (for the agents' feed_keys)")
        new = sub.add_parser("new", help="make the next key (step 1 of a rotation; audited)")
        new.add_argument("--basis", required=True, help="why, for the audit log")
        activate = sub.add_parser("activate", help="sign with the next key from now on (step 2; audited)")
        activate.add_argument("--basis", required=True, help="why, for the audit log")

    def handle(self, *args, **opts):
        try:
            if opts["action"] == "new":
                key = feed_keys.new_key(actor=None, basis=opts["basis"])
                self.stdout.write(f"next key {key.id}: add its public key to every agent's feed_keys:\n{key.public}")
                return
            if opts["action"] == "activate":
                key = feed_keys.activate(actor=None, basis=opts["basis"])
                self.stdout.write(f"key {key.id} is active: the relay re-signs the credential feed with it")
                return
        except feed_keys.KeyringError as exc:
            raise CommandError(str(exc)) from None
        found = feed_keys.keys()
        if not found:
            self.stdout.write("no key yet: the relay makes the first one when it starts")
        for key in found:
            self.stdout.write(f"{key.id}\t{key.state}\t{key.public}\t{key.created}")
        self.stdout.write("feed_keys = [" + ", ".join(f'"{k}"' for k in feed_keys.trusted_public_keys()) + "]")
