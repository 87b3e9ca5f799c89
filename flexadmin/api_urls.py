"""The HTTP API, version 1 (../shared api.md), included at ``api/v1/``.

Paths have no trailing slash, as in api.md. Anything else under ``/api/`` is a JSON 404.
"""

from csp.constants import NONCE
from csp.decorators import csp_update
from django.contrib.auth.decorators import login_not_required
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import api as accounts_api
from billing import api as billing_api
from core.api import not_found
from reporting import api as reporting_api

app_name = "api"

TEAM = "teams/<slug:slug>"

# Swagger UI from our static files. Its page has one inline script, rendered per request
# (the schema URL, the settings, the CSRF header): this view alone lets it run through the
# request's CSP nonce (templates/api/swagger_ui.html); the site-wide policy stays strict.
api_docs = login_not_required(
    csp_update({"script-src": [NONCE]})(
        SpectacularSwaggerView.as_view(url_name="api:schema", template_name="api/swagger_ui.html")
    )
)

urlpatterns = [
    path("teams", accounts_api.TeamsView.as_view(), name="teams"),
    path(f"{TEAM}/packs", billing_api.PacksView.as_view(), name="packs"),
    path(f"{TEAM}/cloud-credits", billing_api.CloudCreditsView.as_view(), name="cloud-credits"),
    path(f"{TEAM}/members/<str:email>", accounts_api.MemberView.as_view(), name="member"),
    path(f"{TEAM}/assignments/<str:email>", billing_api.AssignmentView.as_view(), name="assignment"),
    path(f"{TEAM}/usage-events", billing_api.UsageEventsView.as_view(), name="usage-events"),
    # Event ids are the client's: any characters, slashes included.
    re_path(
        r"^teams/(?P<slug>[-a-zA-Z0-9_]+)/usage-events/(?P<event_id>.+)/refund$",
        billing_api.RefundView.as_view(),
        name="usage-event-refund",
    ),
    path(f"{TEAM}/balance", billing_api.BalanceView.as_view(), name="balance"),
    path(f"{TEAM}/usage", reporting_api.UsageView.as_view(), name="usage"),
    path(f"{TEAM}/ledger", billing_api.LedgerView.as_view(), name="ledger"),
    path("rates", billing_api.RatesView.as_view(), name="rates"),
    path("schema", login_not_required(SpectacularAPIView.as_view()), name="schema"),
    path("docs", api_docs, name="docs"),
    re_path(r"^[\s\S]*$", not_found),  # [\s\S], not ".": a path with a line break is still under /api/
]
