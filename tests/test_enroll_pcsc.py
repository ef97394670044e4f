"""Acceptance (issue 3, point 4): enrolment through the real PC/SC stack (pcscd +
vsmartcard-vpcd + the project's card emulator) binds the UID the emulated card answers with;
a UID already bound is refused with the holder it belongs to."""

from __future__ import annotations

import subprocess
import time

import pytest
from rest_framework.authtoken.models import Token

from ops.accounts.roles import Role
from ops.accounts.services import create_or_update_operator
from ops.registry.choices import HolderKind
from ops.registry.models import Card, Cardholder
from tests import pcsc
from tests.card_emulator import EmulatedCard
from tests.conftest import campuscard_cmd

pcsc_reader = pcsc.pcsc_reader
pytestmark = [pytest.mark.pcsc, pytest.mark.slow]


def _enroll(env, reader, number):
    return subprocess.Popen(
        campuscard_cmd(
            "enroll",
            "--holder",
            number,
            "--operator",
            "nic-desk",
            "--approved-by",
            "SEC",
            "--basis",
            "新生名单2026",
            "--reader",
            reader,
            "--timeout",
            "20",
        ),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _desk(env):
    """The desk's operator, proven by their API token (issue 13, defect 7)."""
    user = create_or_update_operator(username="nic-desk", password="pw-desk-123", role=Role.NIC)
    env["CAMPUSCARD_TOKEN"] = Token.objects.get_or_create(user=user)[0].key


def test_enrolment_binds_the_uid_the_card_answers_with(campus, subprocess_env, pcsc_reader):
    _desk(subprocess_env)
    Cardholder.objects.create(kind=HolderKind.STUDENT, number="2026CS12345", name="王五", department=campus.dept)
    port = pcsc.vpcd_port(pcsc_reader)
    proc = _enroll(subprocess_env, pcsc_reader, "2026CS12345")
    time.sleep(2.0)  # the operator places the card after starting the desk
    with EmulatedCard("04A1B2C3D4E5F6", port=port) as card:
        card.insert()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    bound = Card.objects.get(holder__number="2026CS12345")
    assert bound.uid == "04A1B2C3D4E5F6" and bound.status == "active"
    assert "04A1B2C3D4E5F6" in out


def test_a_uid_already_bound_is_refused_naming_its_holder(campus, subprocess_env, pcsc_reader):
    _desk(subprocess_env)
    Cardholder.objects.create(kind=HolderKind.STUDENT, number="2026CS12346", name="赵六", department=campus.dept)
    taken = campus.cards[0]
    port = pcsc.vpcd_port(pcsc_reader)
    with EmulatedCard(taken.uid, port=port) as card:
        card.insert()
        proc = _enroll(subprocess_env, pcsc_reader, "2026CS12346")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "已绑定给" in err and taken.holder.number in err
    assert not Card.objects.filter(holder__number="2026CS12346").exists()
