from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views

admin.site.site_header = "FlexAdmin staff"
admin.site.site_title = "FlexAdmin staff"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("auth/", include("django.contrib.auth.urls")),
    path("invite/<str:token>/", account_views.accept_invitation, name="accept-invitation"),
    path("healthz", account_views.healthz, name="healthz"),
    path("", include("accounts.urls")),
]
