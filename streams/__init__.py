"""The event contract and the Redis Streams pipeline. Imports no Django: a gate controller runs it."""
