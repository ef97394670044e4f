"""Misuse of cards, detected from the tap stream (R-SEC-5): a card seen at two sites too far
apart for the time between the taps (a clone), a replaced card's old UID still being used,
and blacklisted cards presented anywhere (the security office's alert)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from django.conf import settings

from ops.alerts.choices import AlertKind
from ops.alerts.services import AlertBuffer
from ops.live_rows import DeviceInfo
from ops.masking import mask_name, mask_uid
from streams import envelopes
from streams.cards import CardStatus
from streams.reasons import Reason

MAX_CARDS = 200_000  # the last tap of this many cards is remembered


class CardWatch:
    def __init__(self, alerts: AlertBuffer) -> None:
        self.alerts = alerts
        self.last: OrderedDict[str, tuple[str, str, float]] = OrderedDict()  # uid → site, device, t
        self.min_travel_s = float(getattr(settings, "CLONE_MIN_TRAVEL_S", 60))

    def observe(self, tap: envelopes.Tap, device: DeviceInfo, site: str, card: Mapping[str, Any] | None) -> None:
        """``card``: the card row (``status``, ``holder_id``, ``card_type``) or None if unknown."""
        uid, at = tap.card_uid, tap.occurred_at
        card_status = card["status"] if card else None
        kinds: list[AlertKind] = []
        if card_status == CardStatus.REPLACED:
            kinds.append(AlertKind.OLD_CARD_USED)
        if tap.reason == Reason.BLACKLISTED:
            kinds.append(AlertKind.BLACKLIST_HIT)
        if tap.reason == Reason.ANTI_PASSBACK:  # R-SEC-5: someone else's card passed back
            kinds.append(AlertKind.PASSBACK_VIOLATION)
        if kinds:
            # who and where, for the guard who has to find the person (R-OPS-2): the holder is
            # named by id only — the desk shows the photo and the masked name to roles entitled
            # (made only for a tap that alerts: the hot path's other taps skip the masking)
            where = {
                "device": device["code"],
                "device_name": device["name"],
                "card": mask_uid(uid),
                "holder_id": card["holder_id"] if card else None,
                "holder": mask_name(card["holder__name"]) if card else "",
                "photo": bool(card and card.get("holder__photo_sha256")),
                "card_type": card["card_type"] if card else "",
                "direction": tap.direction,
            }
            for kind in kinds:
                self.alerts.add(kind=kind, subject=uid, device_id=device["id"], at=at, detail=where)
        if card_status is None:
            return
        previous = self.last.get(uid)
        now = at.timestamp()
        if previous is not None:
            prev_site, prev_device, prev_t = previous
            if site and prev_site and site != prev_site and abs(now - prev_t) < self.min_travel_s:
                self.alerts.add(
                    kind=AlertKind.CLONE_SUSPECTED,
                    subject=uid,
                    device_id=device["id"],
                    at=at,
                    detail={
                        "card": mask_uid(uid),
                        "first": prev_device,
                        "second": device["code"],
                        "seconds_apart": round(abs(now - prev_t), 1),
                    },
                )
        self.last[uid] = (site, device["code"], now)
        self.last.move_to_end(uid)
        if len(self.last) > MAX_CARDS:
            self.last.popitem(last=False)
