"""Staff views. Accounts rows are changed only through the services (and so audited):
the admin shows them, and lets staff switch a person's active and staff flags."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from accounts import services
from accounts.models import (
    AlertSettings,
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Notification,
    Reseller,
    SalesRep,
    Team,
    User,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ("email", "first_name", "last_name", "is_active", "is_staff", "date_joined")
    list_filter = ("is_active", "is_staff")
    search_fields = ("email", "first_name", "last_name")
    fields = ("email", "first_name", "last_name", "is_active", "is_staff", "date_joined", "last_login")
    readonly_fields = ("email", "first_name", "last_name", "date_joined", "last_login")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: User, form, change: bool) -> None:
        # Through the service, so the change is audited like every other.
        try:
            services.set_user_flags(
                user=User.objects.get(pk=obj.pk), is_active=obj.is_active, is_staff=obj.is_staff, actor=request.user
            )
        except ValidationError as error:
            messages.error(request, error.messages[0])


@admin.register(Reseller)
class ResellerAdmin(ReadOnlyAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")


@admin.register(SalesRep)
class SalesRepAdmin(ReadOnlyAdmin):
    list_display = ("user", "reseller", "created_at")
    list_select_related = ("user", "reseller")


@admin.register(Team)
class TeamAdmin(ReadOnlyAdmin):
    list_display = ("name", "slug", "plan", "reseller", "contract_start", "contract_end", "time_zone")
    list_filter = ("plan", "reseller")
    search_fields = ("name", "slug")


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ("user", "team", "role", "created_at")
    list_filter = ("role", "team")
    search_fields = ("user__email", "team__name")
    list_select_related = ("user", "team")


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ("membership", "sent_at", "expires_at", "accepted_at", "send_count")
    exclude = ("token_hash",)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_email", "action", "team", "target_repr", "ip_address")
    list_filter = ("action",)
    search_fields = ("actor_email", "target_repr", "action")
    date_hierarchy = "created_at"


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    """Keys of every team and reseller; reseller keys have no page of their own, so staff
    revoke them here (through the service, so it is audited)."""

    list_display = ("name", "prefix", "team", "reseller", "created_by", "created_at", "last_used_at", "revoked_at")
    list_filter = ("reseller",)
    search_fields = ("name", "prefix", "team__name", "reseller__name")
    list_select_related = ("team", "reseller", "created_by")
    exclude = ("key_hash",)
    actions = ["revoke"]

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request, queryset) -> None:
        active = list(queryset.filter(revoked_at__isnull=True))
        for key in active:
            services.revoke_api_key(key=key, actor=request.user)
        messages.success(request, f"Revoked {len(active)} API key{'s' if len(active) != 1 else ''}.")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "team", "kind", "title", "read_at", "emailed_at")
    list_filter = ("kind",)
    search_fields = ("user__email", "title")
    list_select_related = ("user", "team")
    date_hierarchy = "created_at"


@admin.register(AlertSettings)
class AlertSettingsAdmin(ReadOnlyAdmin):
    list_display = ("team", "expiry_reminders", "low_balance", "low_balance_unit", "low_balance_value", "updated_at")
    list_select_related = ("team",)
