"""``campuscard bench <what>``: benchmarks that print their figures (``--json``: one JSON object
on the last line) and, with ``--record``, append them to docs/benchmarks.md."""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError

from bench import common, decide, emergency, fanout, graduates, history, imports, memory, pipeline, revocation, soak
from ops.paths import var_dir
from streams import embedded_redis


class Command(BaseCommand):
    help = "Benchmarks on a scratch database and Redis (never on live data)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="what", required=True)
        p = sub.add_parser("pipeline", help="reader events → Redis → processor → DB → Channels")
        p.add_argument("--rate", type=float, default=3500.0, help="offered taps/s, phase 1")
        p.add_argument("--seconds", type=float, default=15.0)
        p.add_argument("--latency-rate", type=float, default=200.0, help="taps/s, phase 2")
        p.add_argument("--latency-seconds", type=float, default=15.0)
        p.add_argument("--processors", type=int, default=1)
        p.add_argument("--backlog", type=int, default=30_000, help="taps in the capacity phase")
        p.add_argument("--preload", type=int, default=0, help="taps stored beforehand, over a year (COPY)")
        h = sub.add_parser("history", help="desk and look-up queries on a table of N stored taps: p99")
        h.add_argument("--preload", type=int, default=36_000_000, help="taps stored over a year (COPY)")
        h.add_argument("--repeats", type=int, default=50, help="runs of each query")
        g = sub.add_parser("graduates", help="the July run over N graduates")
        g.add_argument("--students", type=int, default=10_000)
        g.add_argument("--deferred", type=int, default=300)
        i = sub.add_parser("import", help="a 30,000-row student list + photo checks")
        i.add_argument("--rows", type=int, default=30_000)
        i.add_argument("--photos", type=int, default=5_000)
        d = sub.add_parser("decide", help="the edge decision with a 100,000-card cache")
        d.add_argument("--cards", type=int, default=100_000)
        d.add_argument("--taps", type=int, default=200_000)
        r = sub.add_parser("revocation", help="loss report commit → every reader refusing")
        r.add_argument("--readers", type=int, default=500)
        r.add_argument("--revocations", type=int, default=20)
        r.add_argument("--processes", type=int, default=10, help="OS processes hosting them")
        f = sub.add_parser("fanout", help="N websocket dashboards on /live/gates/: tap → page latency")
        f.add_argument("--clients", type=int, default=50, help="open gate pages (websocket clients)")
        f.add_argument("--rate", type=float, default=200.0, help="offered gate taps/s")
        f.add_argument("--seconds", type=float, default=30.0)
        f.add_argument("--web", type=int, default=1, help="daphne processes; the pages are dealt over them")
        s = sub.add_parser("soak", help="one real Chromium gate page left open: memory over time")
        s.add_argument("--rate", type=float, default=200.0, help="offered gate taps/s")
        s.add_argument("--minutes", type=float, default=60.0)
        s.add_argument("--sample-s", type=float, default=60.0, help="seconds between samples")
        s.add_argument(
            "--profile-s",
            type=float,
            default=0.0,
            help="also profile the page's main thread this long after the first sample and print where its time goes",
        )
        m = sub.add_parser("memory", help="processor, relay and daphne RSS over a long run at a high tap rate")
        m.add_argument("--rate", type=float, default=2000.0, help="offered gate taps/s")
        m.add_argument("--minutes", type=float, default=30.0)
        m.add_argument("--sample-s", type=float, default=30.0, help="seconds between samples")
        m.add_argument("--pages", type=int, default=5, help="live gate pages open on daphne")
        e = sub.add_parser("emergency", help="lockdown started/ended on the security page → every reader holding it")
        e.add_argument("--readers", type=int, default=500)
        e.add_argument("--rounds", type=int, default=5, help="lockdowns started and ended (2 changes each)")
        e.add_argument("--processes", type=int, default=10, help="OS processes hosting them")
        for q in (p, h, g, i, d, r, f, s, m, e):
            q.add_argument("--json", action="store_true", help="last line: one JSON object")
            q.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
            q.add_argument("--database-url", help="benchmark this database (default: scratch SQLite)")
            q.add_argument("--redis-url", help="benchmark this Redis (default: scratch embedded)")

    def handle(self, *args, **opts):
        if not os.environ.get(common.CHILD_FLAG):
            try:
                code = common.rerun_in_scratch_system(
                    ["bench", *sys.argv[sys.argv.index("bench") + 1 :]],
                    database_url=opts["database_url"],
                    redis_url=opts["redis_url"],
                )
            finally:  # loading the settings started the embedded Redis for this process alone
                if embedded_redis.started_here:
                    embedded_redis.stop(var_dir() / "redis")
            if code:
                raise CommandError(f"benchmark failed (exit {code})")
            return
        if opts["what"] == "pipeline":
            if opts["rate"] <= 0 or opts["latency_rate"] <= 0:
                raise CommandError("rates must be positive")
            figures = pipeline.run(
                rate=opts["rate"],
                seconds=opts["seconds"],
                latency_rate=opts["latency_rate"],
                latency_seconds=opts["latency_seconds"],
                processors=opts["processors"],
                backlog_size=opts["backlog"],
                preload_rows=opts["preload"],
            )
            title = "bench pipeline"
        elif opts["what"] == "history":
            if opts["preload"] < 0 or opts["repeats"] < 1:
                raise CommandError("--preload cannot be negative and --repeats must be positive")
            figures = history.run(preload_rows=opts["preload"], repeats=opts["repeats"])
            title = "bench history"
        elif opts["what"] == "graduates":
            if opts["deferred"] > opts["students"]:
                raise CommandError("--deferred cannot exceed --students")
            figures = graduates.run(students=opts["students"], deferred=opts["deferred"])
            title = "bench graduates"
        elif opts["what"] == "import":
            figures = imports.run(rows=opts["rows"], photo_count=opts["photos"])
            title = "bench import"
        elif opts["what"] == "decide":
            figures = decide.run(cards=opts["cards"], taps=opts["taps"])
            title = "bench decide"
        elif opts["what"] == "revocation":
            figures = revocation.run(
                readers=opts["readers"], revocations=opts["revocations"], processes=opts["processes"]
            )
            title = "bench revocation"
        elif opts["what"] == "emergency":
            if opts["readers"] < 1 or opts["rounds"] < 1 or opts["processes"] < 1:
                raise CommandError("--readers, --rounds and --processes must be positive")
            figures = emergency.run(readers=opts["readers"], rounds=opts["rounds"], processes=opts["processes"])
            title = "bench emergency"
        elif opts["what"] == "fanout":
            if opts["clients"] < 1 or opts["rate"] <= 0 or opts["seconds"] <= 0 or opts["web"] < 1:
                raise CommandError("--clients, --rate, --seconds and --web must be positive")
            figures = fanout.run(clients=opts["clients"], rate=opts["rate"], seconds=opts["seconds"], web=opts["web"])
            title = "bench fanout"
        elif opts["what"] == "soak":
            if opts["rate"] <= 0 or opts["minutes"] <= 0 or opts["sample_s"] <= 0:
                raise CommandError("--rate, --minutes and --sample-s must be positive")
            figures = soak.run(
                rate=opts["rate"],
                minutes=opts["minutes"],
                sample_s=opts["sample_s"],
                profile_s=opts["profile_s"],
                progress=self.stdout.write,
            )
            title = "bench soak"
        elif opts["what"] == "memory":
            if opts["rate"] <= 0 or opts["minutes"] <= 0 or opts["sample_s"] <= 0 or opts["pages"] < 1:
                raise CommandError("--rate, --minutes, --sample-s and --pages must be positive")
            figures = memory.run(
                rate=opts["rate"],
                minutes=opts["minutes"],
                sample_s=opts["sample_s"],
                pages=opts["pages"],
                progress=self.stdout.write,
            )
            title = "bench memory"
        if opts["record"]:
            from django.db import connection

            common.record(title, figures, notes=f"Database: {connection.vendor}.")
        common.emit(figures, opts["json"], self.stdout.write)
