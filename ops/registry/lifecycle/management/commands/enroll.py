"""``campuscard enroll``: the issuance desk. Watches a PC/SC reader, reads the UID of the blank
card placed on it (``FF CA 00 00 00``) and binds it to the chosen cardholder through the same
issuance service as the admin and the API. A UID already bound is refused, naming its holder."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ops.accounts.cli_identity import proven_operator
from ops.registry.lifecycle import services
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.services import _end_of_day
from ops.registry.models import Cardholder
from readers.sources.base import SourceError


class Command(BaseCommand):
    help = "Read a blank card on a PC/SC reader and issue it to a cardholder."

    def add_arguments(self, parser):
        parser.add_argument("--holder", required=True, help="student/staff number")
        parser.add_argument(
            "--operator",
            required=True,
            help="your operator account, proven by CAMPUSCARD_TOKEN or your password",
        )
        parser.add_argument(
            "--approved-by",
            required=True,
            help="who approved (R-CARD-9): an operator's username or a department's code on record",
        )
        parser.add_argument("--basis", required=True, help="application form / list reference")
        parser.add_argument("--reader", default=None, help="PC/SC reader name (default: first)")
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait")
        parser.add_argument("--owner-department", default=None, help="temporary cards: dept code")
        parser.add_argument("--valid-until", default=None, help="temporary cards: YYYY-MM-DD")

    def handle(self, *args, **opts):
        from readers.sources.pcsc import read_one_uid

        try:
            holder = Cardholder.objects.get(number=opts["holder"])
        except Cardholder.DoesNotExist:
            raise CommandError(f"没有学号/工号为 {opts['holder']} 的持卡人") from None
        operator = proven_operator(opts["operator"], command="enroll")  # R-SEC-1: proven, not named
        try:  # before the card is read: a wrong name is refused at once (R-CARD-9: on record)
            approver, approving_department = services.approver_on_record(opts["approved_by"])
            owner = services.department_on_record(opts["owner_department"]) if opts["owner_department"] else None
        except CardRuleError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        valid_until = None
        if opts["valid_until"]:
            from datetime import date

            try:
                valid_until = _end_of_day(date.fromisoformat(opts["valid_until"]))
            except ValueError:
                raise CommandError("--valid-until 应为 YYYY-MM-DD") from None

        self.stdout.write(f"请将空白卡放在读卡器上（{opts['timeout']:.0f} 秒内）… / Place the blank card")
        try:
            presented = read_one_uid(opts["timeout"], reader=opts["reader"])
        except SourceError as exc:
            raise CommandError(f"读卡失败：{exc}") from None
        try:
            card = services.issue_card(
                holder=holder,
                uid=presented.uid,
                operator=operator,
                approved_by_operator=approver,
                approving_department=approving_department,
                basis=opts["basis"],
                owner_department=owner,
                valid_until=valid_until,
            )
        except CardRuleError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"已发卡：{card.uid} → {holder.number}（第 {card.issue_no} 张，读卡器 {presented.reader}）"
            )
        )
