from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.start, name="start"),
    path("teams/<slug:team>/", views.team_home, name="team-home"),
    # User Management's list, person page and CSV import are billing's (billing/urls.py).
    path("teams/<slug:team>/users/invite/", views.member_invite, name="member-invite"),
    path("teams/<slug:team>/users/<int:pk>/role/", views.member_role, name="member-role"),
    path("teams/<slug:team>/users/<int:pk>/resend/", views.member_resend, name="member-resend"),
    path("teams/<slug:team>/users/<int:pk>/remove/", views.member_remove, name="member-remove"),
    path("teams/<slug:team>/users/<int:pk>/make-primary/", views.member_transfer, name="member-transfer"),
    path("teams/<slug:team>/settings/", views.team_settings, name="team-settings"),
    path("teams/<slug:team>/settings/activity/", views.audit_log, name="audit-log"),
    path("teams/<slug:team>/settings/api-keys/", views.api_keys, name="api-keys"),
    path("teams/<slug:team>/settings/api-keys/<int:pk>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path("teams/<slug:team>/settings/alerts/", views.alert_settings, name="alert-settings"),
    path("notifications/", views.notification_list, name="notification-list"),
    path("notifications/read-all/", views.notification_read_all, name="notification-read-all"),
    path("notifications/<int:pk>/read/", views.notification_read, name="notification-read"),
    # Customers (the sales rep's pages) are billing's: billing/urls.py.
    path("account/", views.profile, name="profile"),
    path(
        "account/password/",
        auth_views.PasswordChangeView.as_view(
            template_name="accounts/password_change.html",
            success_url=reverse_lazy("accounts:password-change-done"),
        ),
        name="password-change",
    ),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="accounts/password_change_done.html"),
        name="password-change-done",
    ),
]
