"""Misuse of cards, detected from the tap stream (R-SEC-5): a card seen at two sites too far
apart for the time between the taps (a clone), a replaced card's old UID still being used,
and blacklisted cards presented anywhere (the security office's alert)."""

from __future__ import annotations

from collections import OrderedDict

from django.conf import settings

from ops.alerts.models import AlertKind
from ops.alerts.services import AlertBuffer
from ops.campus.live_rows import DeviceInfo
from ops.privacy import mask_uid
from streams import envelopes
from streams.cards import CardStatus
from streams.reasons import Reason

MAX_CARDS = 200_000  # the last tap of this many cards is remembered


class CardWatch:
    def __init__(self, alerts: AlertBuffer) -> None:
        self.alerts = alerts
        self.last: OrderedDict[str, tuple[str, str, float]] = OrderedDict()  # uid → site, device, t
        self.min_travel_s = float(getattr(settings, "CLONE_MIN_TRAVEL_S", 60))

    def observe(self, tap: envelopes.Tap, device: DeviceInfo, site: str,
                card_status: str | None) -> None:
        uid, at = tap.card_uid, tap.occurred_at
        if card_status == CardStatus.REPLACED:
            self.alerts.add(kind=AlertKind.OLD_CARD_USED, subject=uid, device_id=device["id"], at=at,
                        detail={"device": device["code"], "card": mask_uid(uid)})
        if tap.reason == Reason.BLACKLISTED:
            self.alerts.add(kind=AlertKind.BLACKLIST_HIT, subject=uid, device_id=device["id"], at=at,
                        detail={"device": device["code"], "card": mask_uid(uid)})
        if card_status is None:
            return
        previous = self.last.get(uid)
        now = at.timestamp()
        if previous is not None:
            prev_site, prev_device, prev_t = previous
            if site and prev_site and site != prev_site and abs(now - prev_t) < self.min_travel_s:
                self.alerts.add(kind=AlertKind.CLONE_SUSPECTED, subject=uid, device_id=device["id"],
                            at=at, detail={"card": mask_uid(uid), "first": prev_device,
                                           "second": device["code"],
                                           "seconds_apart": round(abs(now - prev_t), 1)})
        self.last[uid] = (site, device["code"], now)
        self.last.move_to_end(uid)
        if len(self.last) > MAX_CARDS:
            self.last.popitem(last=False)
