"""The simulator is a card source behind the same interface as PC/SC: an agent configured with
``source = "simulator"`` decides and buffers taps from it like from a real reader."""

from __future__ import annotations

import time

from readers.agent.agent import ReaderAgent, client_factory
from readers.agent.config import parse_config
from readers.sources.simulated import SimulatedSource
from streams import credentials as feed
from streams.consumer import stream_entries
from tests.private_servers import wait_until
from tests.signing_keys import PUBLIC_KEYS, SIGNER
from tests.test_agent_offline import card, server  # noqa: F401 (fixture)


def test_an_agent_runs_on_simulated_cards(server, tmp_path):  # noqa: F811
    client = server.client()
    feed.publish(client, [card(f"0A0B0C{i:02X}") for i in range(20)], SIGNER)
    agent = ReaderAgent(
        parse_config(
            {
                "feed_keys": PUBLIC_KEYS,
                "redis_url": server.url,
                "confirm": "redis",  # no processor here: the agent-to-Redis contract alone
                "state_dir": str(tmp_path / "a"),
                "heartbeat_s": 3600,
                "doors": [
                    {
                        "device_id": "SIM-01",
                        "key_hex": "11" * 32,
                        "kind": "pedestrian_gate",
                        "direction": "in",
                        "source": "simulator",
                    }
                ],
            }
        ),
        client_factory(server.url),
    )
    for source in agent.sources:
        assert isinstance(source, SimulatedSource)
        source.rate = 50.0
    agent.start()
    try:
        wait_until(lambda: agent.cache.version == 20, 30.0, "the snapshot", step=0.01)
        time.sleep(1.0)
        from streams import envelopes

        wait_until(lambda: len(agent.outbox) == 0, 30.0, "forwarding", step=0.01)
        parsed = [envelopes.parse(f[b"e"]) for _i, f in stream_entries(client)]
        taps = [t for t in parsed if t.type == "tap"]
        assert len(taps) > 10
        assert {t.device_id for t in taps} == {"SIM-01"}
        assert any(t.reason == "ok" for t in taps)
    finally:
        agent.close()
