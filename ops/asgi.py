"""ASGI wiring in one readable file: Django first, then the live pages — HTTP behind the
session login, websockets behind the origin check and the session login (house style:
channels' sample project)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()  # before importing anything that touches models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from dashboard.routing import asgi_route, http_routes, websocket_routes  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                *http_routes,
                asgi_route(r"", django_asgi_app),
            ]
        ),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_routes))),
    }
)
