from django.contrib import admin
from django.urls import include, path, re_path

from accounts import views as account_views
from core import api

admin.site.site_header = "FlexAdmin staff"
admin.site.site_title = "FlexAdmin staff"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("auth/", include("django.contrib.auth.urls")),
    path("invite/<str:token>/", account_views.accept_invitation, name="accept-invitation"),
    path("healthz", account_views.healthz, name="healthz"),
    path("api/v1/", include("flexadmin.api_urls")),
    re_path(r"^api(/[\s\S]*)?$", api.not_found),
    # billing's pages first: they take over User Management's list and person pages.
    path("", include("billing.urls")),
    path("", include("reporting.urls")),
    path("", include("accounts.urls")),
]

# JSON under /api/, the friendly pages elsewhere.
handler400 = "core.api.bad_request"
handler500 = "core.api.server_error"
