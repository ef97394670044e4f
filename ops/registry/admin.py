"""Admin for the records the pipeline touches. Personal data is shown masked in lists
(PIPL minimisation); access events are read-only (they are the record of what happened)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import ProtectedError, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.urls import path, re_path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from ops.accounts.masked_lookups import MaskedLookupsAdmin
from ops.accounts.permissions import can_view_photos
from ops.admin_kit import ReadOnlyAdmin
from ops.audit import services as audit
from ops.masking import mask_citizen_id, mask_name, mask_phone, mask_uid
from ops.registry import holder_number
from ops.registry.approvals.services import request_registered
from ops.registry.choices import DeviceApproval
from ops.registry.explain import NO_CARD_READ, explain_for
from ops.registry.lifecycle import services as card_services
from ops.registry.lifecycle.errors import CardRuleError
from ops.registry.lifecycle.forms import CARD_FORMS, IssueForm
from ops.registry.lifecycle.photos import MAX_PHOTO_BYTES, REQUIRED_DPI, REQUIRED_SIZE
from ops.registry.models import AccessEvent, Building, Card, Cardholder, Department, Device
from ops.registry.revocations import card_tracker, tracker_labels
from ops.registry.selectors import cards_visible_to, may_view_cards
from ops.registry.services import DeviceNotApproved, device_removed, device_saved, issue_device_key


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")


@admin.register(Building)
class BuildingAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "is_dorm", "curfew_start", "curfew_end")
    list_filter = ("is_dorm",)


class CardInline(admin.TabularInline):
    model = Card
    extra = 0
    fields = ("uid", "card_type", "status", "blacklisted", "issue_no", "valid_from", "valid_until")
    readonly_fields = (*fields, "why_denied")
    can_delete = False
    show_change_link = True

    def get_fields(self, request, obj=None):
        # issue 19, item 5: 为什么被拒绝？ beside each card, for whoever may ask it (the page's rule)
        return [*self.fields, "why_denied"] if may_view_cards(request.user) else list(self.fields)

    @admin.display(description=_("为什么被拒绝？"))
    def why_denied(self, obj: Card) -> str:
        return why_denied_link(obj)


def why_denied_link(card: Card) -> str:
    """The help desk's 为什么被拒绝？ for ``card`` (the door is chosen there; issue 19, item 5)."""
    if not card.pk:
        return ""
    url = f"{reverse('admin:campus_card_explain')}?{urlencode({'uid': card.uid})}"
    return format_html('<a class="why-denied" href="{}">{}</a>', url, _("为什么被拒绝？"))


# A saved holder's full citizen ID and phone are never sent to the browser without a grant
# (R-SEC-2): its page shows them masked; an editor may type a new value.
PERSONAL_FIELDS = {"citizen_id": ("masked_citizen_id", mask_citizen_id), "phone": ("masked_phone", mask_phone)}
NO_CARD_RIGHT = _("您没有办理此卡务的权限：校园卡由网信中心办理，临时卡也可由其审批部门办理")


class CardholderForm(forms.ModelForm):
    """On a saved holder's page the citizen ID and phone inputs start empty (the masked value is
    the hint); left empty, the value on record is kept. (The admin supplies the Meta.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            return
        for name, (_display, mask) in PERSONAL_FIELDS.items():
            if name in self.fields:
                current = getattr(self.instance, name)
                self.initial[name] = ""
                self.fields[name].widget.attrs["placeholder"] = mask(current) if current else ""
                self.fields[name].help_text = _("个人信息保护：原值不显示；留空则保持不变")

    def _kept(self, name: str) -> str:
        value = self.cleaned_data.get(name) or ""
        return value or (getattr(self.instance, name) if self.instance.pk else "")

    def clean_citizen_id(self) -> str:
        return self._kept("citizen_id")

    def clean_number(self) -> str:
        """A formula (``+1+1``) or a stray character is no student/staff number (issue 20)."""
        value = (self.cleaned_data.get("number") or "").strip()
        holder_number.validate(value)
        return value

    def clean_phone(self) -> str:
        return self._kept("phone")


@admin.register(Cardholder)
class CardholderAdmin(MaskedLookupsAdmin):  # no filter on name/ID/phone (R-SEC-2; issue 20)
    form = CardholderForm
    list_display = ("number", "masked_name", "kind", "department", "dorm_building", "masked_citizen_id", "masked_phone")
    list_filter = ("kind", "department", "dorm_building")
    search_fields = ("number",)
    list_select_related = ("department", "dorm_building")
    inlines = [CardInline]
    readonly_fields = ("issue_link",)
    # issue 19, item 8: the photo's digest is computed from the photo, never typed; the photo is
    # set by the upload (or the webcam) on this page — the template's 照片 panel
    exclude = ("photo_sha256",)
    change_form_template = "admin/campus/cardholder/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is None:
            return fields
        # issue 13, defect 4: status and kind change with the card services (the July run,
        # departures), which cancel the cards with them — never by editing the record here
        return fields + [d for d, _mask in PERSONAL_FIELDS.values()] + ["kind", "status"]

    def save_model(self, request, obj, form, change):
        """Through the service: a new dorm building reaches every door (issue 13, defect 4)."""
        card_services.save_holder(holder=obj, changed=form.changed_data if change else [], operator=request.user)

    def get_fields(self, request, obj=None):
        """A read-only viewer gets the masked values in place of the fields (the admin would
        otherwise print the full values); an editor sees the masked values and empty inputs."""
        fields = list(super().get_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            fields = [PERSONAL_FIELDS[f][0] if f in PERSONAL_FIELDS else f for f in fields]
        if not card_services.may_issue(request.user):  # the form would refuse them (R-SEC-3)
            fields = [f for f in fields if f != "issue_link"]
        return list(dict.fromkeys(fields))

    def get_urls(self):
        view = staff_member_required(self.admin_site.admin_view(self.issue_view))
        photo = staff_member_required(self.admin_site.admin_view(self.photo_view))
        return [
            path("<int:pk>/issue/", view, name="campus_cardholder_issue"),
            path("<int:pk>/photo/", photo, name="campus_cardholder_photo"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        holder = Cardholder.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        context = {**(extra_context or {}), "holder_photo": holder_photo_panel(request, holder) if holder else None}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def photo_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The desk's single-photo upload (issue 18, Build 7; issue 19, item 8): a file or a
        webcam frame, through the same photo-standard check as the list imports (R-CARD-8)."""
        holder = get_object_or_404(Cardholder, pk=pk)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (self.has_change_permission(request, holder) and card_services.may_change_photo(request.user)):
            raise PermissionDenied(_("您没有更改持卡人照片的权限"))
        upload = request.FILES.get("photo")
        # one byte past the limit is enough to refuse it: never read a huge upload whole
        data = upload.read(MAX_PHOTO_BYTES + 1) if upload is not None else b""
        source = request.POST.get("source", "upload")
        try:
            card_services.set_holder_photo(holder=holder, data=data, operator=request.user, source=source)
        except CardRuleError as exc:
            for message in exc.messages:
                messages.error(request, message)
            messages.error(request, _("照片未更改"))
        else:
            messages.success(request, _("照片已更新：符合照片标准（蓝色背景，295×421 像素，300 dpi）"))
        return HttpResponseRedirect(reverse("admin:campus_cardholder_change", args=[pk]))

    @admin.display(description=_("卡务"))
    def issue_link(self, obj: Cardholder) -> str:
        if not obj.pk:
            return ""
        return format_html(
            '<a class="button" href="{}">{}</a>', reverse("admin:campus_cardholder_issue", args=[obj.pk]), _("发卡")
        )

    def issue_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        holder = get_object_or_404(Cardholder, pk=pk)
        if not card_services.may_issue(request.user):  # R-SEC-3, R-CARD-7
            raise PermissionDenied(NO_CARD_RIGHT)
        return run_form(request, IssueForm, holder, str(holder), reverse("admin:campus_cardholder_change", args=[pk]))

    @admin.display(description=_("姓名"))
    def masked_name(self, obj: Cardholder) -> str:
        return mask_name(obj.name)

    @admin.display(description=_("身份证号"))
    def masked_citizen_id(self, obj: Cardholder) -> str:
        return mask_citizen_id(obj.citizen_id) if obj.citizen_id else ""

    @admin.display(description=_("手机号"))
    def masked_phone(self, obj: Cardholder) -> str:
        return mask_phone(obj.phone) if obj.phone else ""


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    list_display = ("uid", "holder_number", "card_type", "status", "blacklisted", "issue_no", "valid_until")
    list_filter = ("card_type", "status", "blacklisted")
    search_fields = ("uid", "holder__number")
    list_select_related = ("holder",)
    raw_id_fields = ("holder",)
    readonly_fields = ("desk_actions", "why_denied", "revocation_tracker")

    # issue 13, defect 4: a card changes only through the card services (the desk actions on its
    # page, the issuance form): each writes the credential change every reader must get, the
    # status history and the audit record. The admin's form shows the card; it edits nothing.
    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Card._meta.fields] + ["desk_actions", "why_denied", "revocation_tracker"]

    def has_add_permission(self, request):
        return False  # a card is issued on its holder's page (发卡), by the service

    def get_queryset(self, request: HttpRequest):
        """NIC sees every card; a department sees only the temporary cards it approved and
        manages (R-CARD-7: 谁审批，谁管理，谁负责)."""
        return cards_visible_to(request.user, super().get_queryset(request))

    def get_urls(self):
        view = staff_member_required(self.admin_site.admin_view(self.action_view))
        why = staff_member_required(self.admin_site.admin_view(self.explain_view))
        return [
            path("explain/", why, name="campus_card_explain"),
            # only the card actions: the admin's own <pk>/change/, history/ and delete/ stay
            re_path(rf"^(?P<pk>\d+)/(?P<action>{'|'.join(CARD_FORMS)})/$", view, name="campus_card_action"),
            *super().get_urls(),
        ]

    def explain_view(self, request: HttpRequest) -> HttpResponse:
        """为什么被拒绝？ The help desk enters a card UID and a device code — of a card it may
        read (the card list's own rule, issue 20, item 2)."""
        if not may_view_cards(request.user):
            raise PermissionDenied(NO_CARD_READ)
        uid, code = request.GET.get("uid", ""), request.GET.get("device", "")
        result, error = None, None
        event_id = request.GET.get("event", "")
        if event_id:  # from a denied row on a desk (issue 19, item 5): that tap's card and door
            try:
                tapped = AccessEvent.objects.filter(event_id=event_id).values_list("card_uid", "device__code").first()
            except ValidationError:
                tapped = None
            if tapped is None:
                error = str(_("没有这条刷卡记录"))
            else:
                uid, code = tapped
        if uid and code:
            try:
                result = explain_for(user=request.user, uid=uid, device_code=code)  # issue 20, item 2
            except LookupError as exc:
                error = str(exc)
                if event_id:  # the tap's card is not one this operator may read: not even its UID
                    uid, error = "", str(_("这条刷卡记录的卡不在您可查看的范围内"))
        return render(
            request,
            "admin/campus/explain.html",
            {
                "uid": uid,
                "device": code,
                "result": result,
                "rule_error": error,
                "devices": Device.objects.order_by("code").values_list("code", "name"),
                "title": _("为什么被拒绝？"),
                **self.admin_site.each_context(request),
            },
        )

    @admin.display(description=_("卡务"))
    def desk_actions(self, obj: Card) -> str:
        """Issue 19, item 7: only the actions the card's state allows — the lifecycle service's
        own rules (``STATE_RULES``), not a table of the desk's (no 解挂 on an active card)."""
        if not obj.pk:
            return ""
        allowed = card_services.actions_allowed(obj)
        if not allowed:
            return format_html('<span id="no-actions">{}</span>', _("此卡当前的状态下没有可办理的卡务"))
        return format_html_join(
            " ",
            '<a class="button" id="do-{}" href="{}">{}</a>',
            (
                (name, reverse("admin:campus_card_action", args=[obj.pk, name]), CARD_FORMS[name].title)
                for name in allowed
                if name in CARD_FORMS
            ),
        )

    @admin.display(description=_("为什么被拒绝？"))
    def why_denied(self, obj: Card) -> str:
        return why_denied_link(obj)  # issue 19, item 5: from the card's own page

    @admin.display(description=_("挂失/注销送达读卡器"))
    def revocation_tracker(self, obj: Card) -> str:
        """Issue 17, Build 6 (R-USE-1): which readers already hold this card's loss report,
        blacklisting or cancellation and which do not yet — live over a websocket
        (``dashboard/revocation_feed.py``; ``static/campus/revocations.js`` draws it)."""
        if not obj.pk:
            return ""
        return render_to_string(
            "admin/campus/revocation_tracker.html",
            {"tracker": card_tracker(obj.uid), "labels": tracker_labels(), "ws_path": f"/live/revocations/{obj.pk}/"},
        )

    def action_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        if action not in CARD_FORMS:
            raise Http404
        card = get_object_or_404(Card.objects.select_related("holder"), pk=pk)
        if not card_services.may_manage(request.user, card):  # R-SEC-3, R-CARD-7
            raise PermissionDenied(NO_CARD_RIGHT)
        # issue 19, item 7: the holder to confirm against; only what the card's state allows (the
        # service checks it again, locked); once done, the desk lands on the card the action
        # returns — after 补卡 the new one
        return run_form(
            request,
            CARD_FORMS[action],
            card,
            f"{card.uid}",
            lambda result: reverse("admin:campus_card_change", args=[result.pk]),
            refusal=card_services.state_refusal(card, action),
            holder=holder_to_confirm(request, card.holder),
        )

    @admin.display(description=_("学工号"))
    def holder_number(self, obj: Card) -> str:
        return obj.holder.number


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name",
        "kind",
        "location",
        "building",
        "owner",
        "state",
        "approval",
        "last_seen_at",
        "credential_version",
        "buffered",
    )
    list_filter = ("kind", "state", "approval", "building", "owner")
    search_fields = ("code", "name", "location")
    list_select_related = ("building", "owner")
    actions = ["issue_keys", "issue_keys_compromised"]
    # R-DEV-1 (issue 18, Build 2): a device's place changes only through an approved move request
    # (设备安装/移位申请); what it was approved with is shown, not edited, here
    PLACE_FIELDS = ("building", "location", "site", "approved_address")

    def get_readonly_fields(self, request: HttpRequest, obj: Device | None = None):
        return ("approval", *self.PLACE_FIELDS) if obj is not None else ("approval",)

    def has_delete_permission(self, request: HttpRequest, obj: Device | None = None) -> bool:
        """An approved device leaves through an approved removal request, not a delete (R-DEV-1);
        a pending or rejected install may be deleted."""
        if obj is not None and obj.approval == DeviceApproval.APPROVED:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Device, form, change) -> None:
        """Its agent's Redis ACL user follows the edit (issue 12, Build 6). A device registered
        here is pending, with its install request filed by this operator: another NIC operator
        approves it before it is given a key (R-DEV-1, four eyes; issue 18, Build 2)."""
        before = Device.objects.filter(pk=obj.pk).values_list("agent", "code").first() if change else None
        if not change:
            obj.approval = DeviceApproval.PENDING
        super().save_model(request, obj, form, change)
        if not change:
            request_registered(device=obj, by=request.user, reason=str(_("管理后台登记新设备")))
        device_saved(device=obj, agent_before=(before[0] or before[1]) if before else None, operator=request.user)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        gone = list(queryset.exclude(approval=DeviceApproval.APPROVED).values_list("code", "agent"))
        super().delete_queryset(request, queryset.exclude(approval=DeviceApproval.APPROVED))
        for code, agent in gone:
            device_removed(code=code, agent=agent, operator=request.user)

    def delete_model(self, request: HttpRequest, obj: Device) -> None:
        code, agent = obj.code, obj.agent
        super().delete_model(request, obj)
        device_removed(code=code, agent=agent, operator=request.user)

    # A device's first taps can commit while its delete waits for the tap-commit lock: the delete
    # is then refused under the lock (ops.registry.event_refs) and nothing changes — said to the
    # operator in their language, not as an error page.
    def delete_view(self, request: HttpRequest, object_id: str, extra_context=None) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ProtectedError as exc:
            self.message_user(request, str(exc.args[0]), level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:campus_device_change", args=[object_id]))

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        # one transaction, as the delete page has: the bulk delete writes its log entries (and
        # their audit records) before it deletes, and a refused delete must take them back
        try:
            with transaction.atomic():
                return super().changelist_view(request, extra_context)
        except ProtectedError as exc:  # the bulk delete action, refused the same way
            self.message_user(request, str(exc.args[0]), level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:campus_device_changelist"))

    @admin.action(description=_("生成/更换设备密钥（只显示一次；旧密钥短期内仍有效）"))
    def issue_keys(self, request: HttpRequest, queryset):
        return self._issue_keys(request, queryset, compromised=False)

    @admin.action(description=_("更换设备密钥：旧密钥已泄露，立即作废"))
    def issue_keys_compromised(self, request: HttpRequest, queryset):
        return self._issue_keys(request, queryset, compromised=True)

    def _issue_keys(self, request: HttpRequest, queryset, *, compromised: bool):
        basis = "admin: key compromised" if compromised else "admin"
        keys = []
        for d in queryset:
            try:
                keys.append(
                    (d.code, issue_device_key(device=d, operator=request.user, basis=basis, compromised=compromised))
                )
            except DeviceNotApproved as exc:  # R-DEV-1: not trusted before NIC approved it
                self.message_user(request, str(exc), messages.ERROR)
        if not keys:
            return None
        return render(
            request,
            "admin/campus/device_keys.html",
            {
                "keys": keys,
                "compromised": compromised,
                "overlap_min": round(settings.DEVICE_KEY_OVERLAP_S / 60),
                "title": _("设备密钥"),
                **self.admin_site.each_context(request),
            },
        )


class CappedPaginator(Paginator):
    """Counts at most ``CAP`` + 1 rows (``SELECT COUNT(*) FROM (… LIMIT CAP+1)``): the tap table
    holds a year — ~36 M rows — and an exact COUNT(*) of it takes seconds on every page. Past
    the cap the list says "CAP+1" rows and pages up to there; narrow it with the filters."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if isinstance(rows, QuerySet):
            return rows.order_by()[: self.CAP + 1].count()
        return len(rows)


@admin.register(AccessEvent)
class AccessEventAdmin(MaskedLookupsAdmin, ReadOnlyAdmin):
    """A person's passages are personal data (R-SEC-2; issue 13, defect 8): the card is shown
    masked and the holder not at all, here and on a tap's own page; a search for one card's
    passages is audited. Unmasked, a person's record is seen only under a grant (个人数据查询)."""

    list_display = ("occurred_at", "device", "masked_uid", "direction", "decision", "reason")
    fields = ("event_id", "device", "masked_uid", "direction", "decision", "reason", "flags", "occurred_at")
    readonly_fields = fields
    # a date filter (today / 7 days / this month / this year: ranges on the time index) rather
    # than date_hierarchy, whose year list is a DISTINCT over the whole table
    list_filter = (("occurred_at", admin.DateFieldListFilter), "decision", "reason", "device__kind")
    # a whole card UID (as read off the card: spaces, colons and case do not matter) or a device
    # code; a UID is found through indexes — the card's, or for a card never registered the
    # partial index on unknown cards' UIDs — never by a substring scan of a year of taps
    search_fields = ("device__code",)
    search_help_text = _("输入完整卡号（UID）或设备编号")
    list_select_related = ("device",)
    paginator = CappedPaginator
    show_full_result_count = False  # the table is large: no COUNT(*) on every page

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[AccessEvent], search_term: str
    ) -> tuple[QuerySet[AccessEvent], bool]:
        uid = search_term.strip().replace(" ", "").replace(":", "").upper()
        if not card_services.UID_RE.match(uid):
            return super().get_search_results(request, queryset, search_term)
        cards = list(Card.objects.filter(uid=uid).values_list("id", flat=True))
        audit.record(  # R-SEC-2: who looked up whose passages, and when
            actor=request.user,
            action="access_events.search",
            object_type="card",
            object_id=cards[0] if cards else mask_uid(uid),
            basis="admin",
            data={"card": mask_uid(uid)},
        )
        return queryset.filter(Q(card_id__in=cards) | Q(card__isnull=True, card_uid=uid)), False

    @admin.display(description=_("卡号(UID)"))
    def masked_uid(self, obj: AccessEvent) -> str:
        return mask_uid(obj.card_uid)


def holder_photo_panel(request: HttpRequest, holder: Cardholder) -> dict[str, Any]:
    """The holder page's 照片 panel: the photo for the roles that may see photos, and the upload
    (a file or the webcam) for whoever may change it (issue 19, item 8)."""
    may_see = can_view_photos(request.user)
    may_change = card_services.may_change_photo(request.user)
    return {
        "has_photo": bool(holder.photo_sha256),
        # the digest in the address: a new photo is a new address (the view is never cached)
        "url": f"{reverse('holder-photo', args=[holder.pk])}?v={holder.photo_sha256[:12]}"
        if may_see and holder.photo_sha256
        else "",
        "upload_url": reverse("admin:campus_cardholder_photo", args=[holder.pk]) if may_change else "",
        "width": REQUIRED_SIZE[0],
        "height": REQUIRED_SIZE[1],
        "dpi": REQUIRED_DPI,
    }


def holder_to_confirm(request: HttpRequest, holder: Cardholder) -> dict[str, Any]:
    """The holder as a card action's form shows them, to confirm against the person at the desk
    (issue 19, item 7): the name masked, as everywhere (R-SEC-2: unmasked only on the personal-
    data page, under a grant), the photo only for the roles that may see photos."""
    may_see_photo = can_view_photos(request.user)
    return {
        "number": holder.number,
        "name": mask_name(holder.name),
        "kind": holder.get_kind_display(),
        "department": holder.department.name if holder.department_id else "",
        "photo_url": reverse("holder-photo", args=[holder.pk]) if may_see_photo and holder.photo_sha256 else "",
        "photo_hidden": bool(holder.photo_sha256) and not may_see_photo,
    }


def run_form(
    request: HttpRequest,
    form_class,
    subject,
    label: str,
    done_url: str | Callable[[Any], str],
    *,
    refusal: str | None = None,
    holder: dict[str, Any] | None = None,
) -> HttpResponse:
    """Show the action's form; on a valid POST call its service. A broken rule is shown on the
    form with the service's message, and nothing is changed. ``refusal``: why the subject's state
    refuses the action (the form is then not offered; a POST is refused the same way);
    ``done_url``: where to go once done (or a function of the action's result)."""
    extra = {"subject": subject} if getattr(form_class, "takes_subject", False) else {}
    form = form_class(request.POST or None, **extra)
    rule_error = refusal
    if refusal is None and request.method == "POST" and form.is_valid():
        try:
            result = form.run(subject, request.user)
        except CardRuleError as exc:
            rule_error = " ".join(exc.messages)
        else:
            messages.success(request, form.done_message(result))
            return HttpResponseRedirect(done_url(result) if callable(done_url) else done_url)
    return render(
        request,
        "admin/cards/action_form.html",
        {
            "form": form,
            "subject": label,
            "rule_error": rule_error,
            "refused": refusal is not None,
            "holder": holder,
            "back_url": done_url(subject) if callable(done_url) else done_url,
            "title": form.title,
            **admin.site.each_context(request),
        },
    )
