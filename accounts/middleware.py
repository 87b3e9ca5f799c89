"""Request context for the audit trail.

The services write audit events; they learn "from where" through a context variable set
here, so that no service needs a request argument.
"""

from collections.abc import Callable

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
