"""One workflow step posted from a plain server-rendered page (an alert's, a personal-data
request's): run it; a refusal by the rules is shown on the page as an error message, in the
user's language, and changes nothing; then back to the page (POST → redirect → GET)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _


def run_step(
    request: HttpRequest, step: Callable[[], Any], refusals: tuple[type[Exception], ...], back: str, **back_kwargs: Any
) -> HttpResponse:
    try:
        step()
    except refusals as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("已保存"))
    return redirect(back, **back_kwargs)
