"""``campuscard api_token <username>``: create (or show) the API token of an operator."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from ops.audit import services as audit


class Command(BaseCommand):
    help = "Create or show an operator's API token (for HR / Academic Affairs systems)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--rotate", action="store_true", help="replace the existing token")

    def handle(self, *args, **opts):
        try:
            user = get_user_model().objects.get(username=opts["username"], is_active=True)
        except get_user_model().DoesNotExist:
            raise CommandError(f"没有名为 {opts['username']} 的有效操作员") from None
        if opts["rotate"]:
            Token.objects.filter(user=user).delete()
        token, created = Token.objects.get_or_create(user=user)
        if created:
            audit.record(actor=None, action="api_token.create", object_type="user", object_id=user.username)
        self.stdout.write(token.key)
