"""The reader agent ("edge"): decides locally from a cached credential list, writes every event to
a local SQLite outbox first and forwards it to Redis when it can (store-and-forward).

- :mod:`readers.agent.cache` — the credential cache (SQLite + an in-memory mirror for lookups)
- :mod:`readers.agent.outbox` — the durable FIFO of signed events waiting for Redis
- :mod:`readers.agent.forwarder` — drains the outbox into ``campuscard:events`` in batches
- :mod:`readers.agent.agent` — ties doors, card sources, credential sync and heartbeats together
- :mod:`readers.agent.config` — the agent's JSON/TOML configuration

Imports no Django: a gate controller runs it with no web stack.
"""
