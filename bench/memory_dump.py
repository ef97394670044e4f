"""Where a Chromium renderer's memory is: one memory-infra dump taken through the DevTools
protocol (``Tracing`` with the ``disabled-by-default-memory-infra`` category), reduced to MiB per
allocator — ``malloc``, Blink's ``partition_alloc`` partitions (``buffer``, ``fast_malloc``,
``layout``, ``array_buffer``), ``v8``, ``blink_gc``, ``cc``, ``skia``, ``font_caches`` … — for
the renderer processes. ``bench soak`` takes one when the page is warm and one at the end, so a
renderer whose footprint grows outside the JS heap shows where it grows."""

from __future__ import annotations

import base64
import json
from typing import Any

DUMP_CONFIG = {
    "includedCategories": ["disabled-by-default-memory-infra"],
    "excludedCategories": ["*"],
    "memoryDumpConfig": {"triggers": []},
}
TIMEOUT_S = 30.0


def _read_stream(cdp: Any, handle: str) -> str:
    chunks: list[str] = []
    while True:
        part = cdp.send("IO.read", {"handle": handle, "size": 1 << 20})
        data = part.get("data", "")
        chunks.append(base64.b64decode(data).decode() if part.get("base64Encoded") else data)
        if part.get("eof"):
            break
    cdp.send("IO.close", {"handle": handle})
    return "".join(chunks)


def _size(attrs: dict[str, Any]) -> int:
    size = attrs.get("size") or {}
    value = size.get("value", "0")
    return int(value, 16) if isinstance(value, str) else int(value)


def _key(name: str) -> str | None:
    """The allocators reported: every top-level one; Blink's partitions; V8's and Oilpan's
    heaps per thread kind (``main`` vs ``workers`` — a web worker's heap is not in the page's
    ``performance.memory``)."""
    parts = name.split("/")
    if len(parts) == 1:
        return name
    if parts[0] == "partition_alloc" and len(parts) == 3 and parts[1] == "partitions":
        return f"partition_alloc/{parts[2]}"
    if parts[0] in ("v8", "blink_gc") and len(parts) == 2:
        return name
    return None


def allocators(events: list[dict[str, Any]], pids: set[int]) -> dict[str, float]:
    """MiB per allocator (see ``_key``) in the memory dumps of ``pids``."""
    totals: dict[str, int] = {}
    for event in events:
        if event.get("ph") != "v" or event.get("pid") not in pids:
            continue
        for name, dump in (event.get("args", {}).get("dumps", {}).get("allocators") or {}).items():
            key = _key(name)
            if key is not None:
                totals[key] = totals.get(key, 0) + _size(dump.get("attrs", {}))
    return {k: round(v / 2**20, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1]) if v >= 2**19}


def take(chromium: Any, pids: set[int]) -> dict[str, float]:
    """One dump of every process of ``chromium`` (an ``bench.cdp_pipe.Chromium``), reduced
    to the allocators of ``pids``."""
    chromium.send("Tracing.start", {"traceConfig": DUMP_CONFIG, "transferMode": "ReturnAsStream"})
    try:
        result = chromium.send("Tracing.requestMemoryDump", {"deterministic": True, "levelOfDetail": "detailed"})
    finally:
        chromium.send("Tracing.end")
    done = chromium.wait_event("Tracing.tracingComplete", TIMEOUT_S)
    if not result.get("success") or "stream" not in done:
        return {}
    trace = json.loads(_read_stream(chromium, done["stream"]))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    return allocators(events, pids)
