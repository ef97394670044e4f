"""The ``campuscard`` console command: Django's manage.py with the project's settings preset.
Every operation is a subcommand (``campuscard demo``, ``campuscard process``, …)."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv if argv is not None else sys.argv)


if __name__ == "__main__":
    main()
