"""Request middleware. UI language: Simplified Chinese unless the operator chose another language
(the language menu sets Django's language cookie). The browser's Accept-Language is deliberately
ignored: the users are Chinese college staff, and a desk PC with an English OS must still show
Chinese. Request id: every request's log lines carry one (issue 16, Build 5)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from ops import logs

REQUEST_ID_HEADER = "X-Request-ID"
_GOOD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestIdMiddleware:
    """The request's id for its log lines (``ops.logs``) and its response's ``X-Request-ID``:
    the one a proxy in front sent, if it is a plain token, else a new one — so a collector can
    join the proxy's access line, our lines and the operator's report of "request X failed"."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = given if _GOOD_ID.fullmatch(given) else uuid.uuid4().hex
        token = logs.request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            logs.request_id.reset(token)
        response.headers.setdefault(REQUEST_ID_HEADER, request_id)
        return response


class ChosenLanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.available = dict(settings.LANGUAGES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        language = chosen if chosen in self.available else settings.LANGUAGE_CODE
        request.LANGUAGE_CODE = language
        with translation.override(language):  # restored afterwards: nothing leaks to the thread
            response = self.get_response(request)
        response.headers.setdefault("Content-Language", language)
        return response
