"""Request context for the audit trail, and a signed-in session kept alive while it is used.

The services write audit events; they learn "from where" through a context variable set
here, so that no service needs a request argument.
"""

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from accounts.audit import client_ip


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = client_ip.set(request.META.get("REMOTE_ADDR") or None)
        try:
            return self.get_response(request)
        finally:
            client_ip.reset(token)


# When the session was last saved to keep it alive (seconds since the epoch).
REFRESHED_KEY = "refreshed"


class SessionRefreshMiddleware:
    """Keep a signed-in session alive while it is used, without writing it on every page.

    A session lasts ``SESSION_COOKIE_AGE`` from its last save. Saving it on every request
    (``SESSION_SAVE_EVERY_REQUEST``) would cost every page a database write and a new
    cookie; this saves it at most once per ``FLEX_SESSION_REFRESH`` seconds of use, so a
    person is signed out after between ``SESSION_COOKIE_AGE - FLEX_SESSION_REFRESH`` and
    ``SESSION_COOKIE_AGE`` without a page, never in the middle of a working day.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = int(time.time())
            if now - request.session.get(REFRESHED_KEY, 0) >= settings.FLEX_SESSION_REFRESH:
                request.session[REFRESHED_KEY] = now  # saved, with a new expiry, with the response
        return self.get_response(request)
