"""Migrate, seed the users and the product's service pattern, serve: ``python -m tests.cas_server
DIR PORT USERS_JSON`` (USERS_JSON: a list of {username, password, first_name, email,
is_staff, is_superuser} — the CAS server's own flags, which it releases as attributes and the
product must ignore)."""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    directory, port, users = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    os.environ["TEST_CAS_DIR"] = directory
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.cas_server.settings"
    import django

    django.setup()
    from cas_server.models import ReplaceAttributName, ServicePattern
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    for spec in users:
        user = User(**{k: v for k, v in spec.items() if k != "password"})
        user.set_password(spec["password"])
        user.save()
    # the product on any port of this host, with single logout, releasing the name, the e-mail
    # and the CAS server's own staff/superuser flags (which must grant nothing in the product)
    pattern = ServicePattern.objects.create(
        pos=1, name="campuscard", pattern=r"^http://127\.0\.0\.1:\d+/", single_log_out=True
    )
    for name, replace in (("first_name", "cn"), ("email", "mail"), ("is_staff", ""), ("is_superuser", "")):
        ReplaceAttributName.objects.create(name=name, replace=replace, service_pattern=pattern)
    call_command("runserver", f"127.0.0.1:{port}", use_reloader=False, use_threading=True, skip_checks=True)


if __name__ == "__main__":
    main()
