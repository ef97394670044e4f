"""UI language: Simplified Chinese unless the operator chose another language (the language
menu sets Django's language cookie). The browser's Accept-Language is deliberately ignored: the
users are Chinese college staff, and a desk PC with an English OS must still show Chinese."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation


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
