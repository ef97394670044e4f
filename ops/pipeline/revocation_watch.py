"""A reader still missing a revocation 30 s after it was published is an alert (issue 17, Build 6;
R-USE-1), naming the card (masked) and the reader — one alert per (revocation, reader), so each
is worked and cleared on its own, and routed by the reader's owning department like any device
alert. Run by ``campuscard supervise`` with the other device checks, every ``SUPERVISE_S``.

Readers that are silent or never heard from are not alerted here: ``upload_stopped`` already
says they are cut off (the card's page still lists them as missing). The check looks at the
``ALERTED_LATEST`` newest revocations of the last day: a reader that misses more than that is
behind on everything, and its ``credential_lag`` alert says so — a July cancellation run of
thousands of cards must not become thousands of alerts per lagging reader.

The condition clears when the reader reports the revocation's version or later; the alert then
closes itself once it stayed clear (``resolve_cleared``, issue 19). On the NIC desk, readers
missing revocations on many devices at once are one grouped row."""

from __future__ import annotations

from datetime import datetime, timedelta

from ops.alerts.choices import AlertKind, AlertStatus
from ops.alerts.models import Alert
from ops.alerts.services import AlertBuffer, clear_subjects
from ops.registry.choices import DeviceState
from ops.registry.revocations import Reader, Revocation, expected_readers, recent_revocations

GRACE_S = 30  # as the per-device credential_lag check (supervision.CREDENTIAL_LAG_S)
ALERTED_LATEST = 20


def subject(reader_code: str, version: int) -> str:
    """One alert per (reader, revocation): the reader's code and the revocation's feed version
    (the masked card is in the detail; two cards may mask alike)."""
    return f"{reader_code}#v{version}"


def _alerted(reader: Reader) -> bool:
    return reader.heard and reader.state != DeviceState.SILENT


def watch_revocations(*, now: datetime) -> int:
    """Raise an alert for each (revocation published more than ``GRACE_S`` ago, reader heard
    from that does not hold it yet) not already alerted; clear the alerts of readers that caught
    up. Returns the number raised."""
    readers = {r.id: r for r in expected_readers()}
    open_alerts = list(
        Alert.objects.filter(kind=AlertKind.REVOCATION_MISSING, cleared_at__isnull=True)
        .exclude(status=AlertStatus.RESOLVED)
        .values_list("subject", "device_id", "detail")
    )
    caught_up = [
        subject_
        for subject_, device_id, detail in open_alerts
        if (reader := readers.get(device_id or 0)) is not None and reader.version >= int(detail.get("version", 0))
    ]
    if caught_up:
        clear_subjects(kinds=[AlertKind.REVOCATION_MISSING], subjects=caught_up, at=now)
    already = {subject_ for subject_, _d, _detail in open_alerts}
    due: list[Revocation] = recent_revocations(
        now=now, limit=ALERTED_LATEST, published_before=now - timedelta(seconds=GRACE_S)
    )
    alerts = AlertBuffer()
    for revocation in due:
        assert revocation.version is not None and revocation.published_at is not None  # published
        for reader in readers.values():
            if not _alerted(reader) or reader.holds(revocation):
                continue
            name = subject(reader.code, revocation.version)
            if name in already:
                continue
            alerts.add(
                kind=AlertKind.REVOCATION_MISSING,
                subject=name,
                device_id=reader.id,
                at=now,
                detail={
                    "card": revocation.card,
                    "status": revocation.status,
                    "blacklisted": revocation.blacklisted,
                    "version": revocation.version,
                    "published_at": revocation.published_at.isoformat(),
                    "holds": reader.version,
                },
            )
    raised = len(alerts.pending)
    alerts.flush()
    return raised
