"""``campuscard demo``: set up a demo campus and run web server, processor and simulator
together until Ctrl-C, which stops all of them cleanly."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from ops.demo.operators import ensure_demo_operators
from ops.demo.seed import seed_demo_campus
from ops.paths import var_dir
from ops.pipeline import feed_keys
from streams import embedded_redis


class Command(BaseCommand):
    help = "Seed a demo campus and run web server, processor and simulator until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--rate", type=float, default=15.0, help="simulated taps per second")
        parser.add_argument(
            "--speed", type=float, default=30.0, help="simulated campus seconds per real second (rhythm)"
        )
        parser.add_argument("--holders", type=int, default=2400)
        parser.add_argument("--setup-only", action="store_true", help="migrate, seed and create operators, then exit")

    def handle(self, *args, **opts):
        call_command("migrate", verbosity=0, interactive=False)
        report = seed_demo_campus(holders=opts["holders"])
        self.stdout.write(
            f"demo campus: {report.holders} cardholders, {report.devices} devices"
            + ("" if report.created else " (already seeded)")
        )
        password = os.environ.get("CAMPUSCARD_DEMO_PASSWORD") or secrets.token_urlsafe(9)
        operators = ensure_demo_operators(password=password)
        self.stdout.write(self.style.SUCCESS(f"demo operator logins (password for all: {password}):"))
        for username, label in operators:
            self.stdout.write(f"  {username:<10} {label}")
        if opts["setup_only"]:
            return
        self._run_all(opts)

    def _run_all(self, opts) -> None:
        env = dict(os.environ, REDIS_URL=settings.REDIS_URL, CAMPUSCARD_VAR_DIR=str(var_dir()))
        py = sys.executable
        specs = {
            "web": [py, "-m", "daphne", "-b", opts["host"], "-p", str(opts["port"]), "ops.asgi:application"],
            "processor": [py, "-m", "ops.cli", "process"],
            "relay": [py, "-m", "ops.cli", "relay"],
            "supervisor": [py, "-m", "ops.cli", "supervise"],
            "simulator": [py, "-m", "ops.cli", "simulate", "--rate", str(opts["rate"]), "--speed", str(opts["speed"])],
        }
        feed_keys.signer()  # the credential feed's key, before the relay and the simulator need it
        procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in specs.items()}
        self.stdout.write(
            self.style.SUCCESS(f"running: http://{opts['host']}:{opts['port']}/  (Ctrl-C stops everything)")
        )
        stopping = False

        def _stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        failed = None
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    failed = f"{name} exited with code {proc.returncode}"
                    stopping = True
            time.sleep(0.2)
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        if embedded_redis.started_here:  # never stop a server another process started
            embedded_redis.stop(var_dir() / "redis")
        if failed:
            self.stderr.write(f"demo stopped: {failed}")
            sys.exit(1)
        self.stdout.write("demo stopped cleanly")
