"""Acceptance (issue 4, point 4): a fuzz run of the frame parser over ≥ 100,000 inputs raises
nothing but the project's own validation error (a malformed reader message is dead-lettered,
never crashes a worker)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import frames, signing
from streams.consumer import InvalidEntry
from tests.factories import tap

pytestmark = pytest.mark.slow
GOOD = json.loads(tap().model_dump_json())

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def frames_(draw):
    """Hostile entries: random bytes, random JSON, and valid envelopes with one field broken."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        payload = draw(st.binary(max_size=300))
    elif kind == 1:
        payload = json.dumps(draw(json_values)).encode()
    else:
        envelope = dict(GOOD)
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from([*GOOD, "type", "extra", "mac"]))
            if draw(st.booleans()):
                envelope[key] = draw(json_values)
            else:
                envelope.pop(key, None)
        payload = json.dumps(envelope, default=str).encode()
    fields = {b"e": payload}
    if draw(st.booleans()):
        fields[b"m"] = draw(st.binary(max_size=80))
    if draw(st.integers(0, 9)) == 0:
        fields = {draw(st.binary(max_size=5)): payload}
    return fields


@pytest.mark.timeout(900)  # 100,000 inputs: ~4–6 min on a 2-core CI machine
@settings(max_examples=100_000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(frames_())
def test_the_frame_parser_raises_only_its_own_validation_error(fields):
    try:
        signed = frames.decode(fields)
    except InvalidEntry:
        return
    # whatever parses is a well-formed envelope carrying exactly the bytes it came as
    assert signed.raw == fields[b"e"]
    assert not signing.verify(b"k" * 32, signed.raw, signed.mac) or signed.mac is not None
