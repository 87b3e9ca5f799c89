"""Staff views. The rate sheet is edited here (a change is a new row with a later
effective date), through the audited ``billing.services.rates``; packs, credits, the
ledger and usage are shown read-only: they change only through the billing services."""

from django.contrib import admin
from django.utils import timezone

from accounts.admin import ReadOnlyAdmin
from billing import services
from billing.models import (
    Charge,
    CloudCreditBalance,
    ExpiryReminder,
    LedgerCheckRun,
    LedgerEntry,
    LowBalanceState,
    Rate,
    RateVariant,
    TokenPack,
    UsageEvent,
)


class RateVariantInline(admin.TabularInline):
    model = RateVariant
    extra = 0

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or obj.effective_from > timezone.now()

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)


@admin.register(Rate)
class RateAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name",
        "charge_type",
        "tokens",
        "unit",
        "cloud_credit_eligible",
        "grace_minutes",
        "effective_from",
        "illustrative",
    )
    list_filter = ("charge_type", "cloud_credit_eligible", "illustrative")
    search_fields = ("code", "name")
    inlines = [RateVariantInline]
    save_as = True  # "Save as new" is how a rate change is made: a new row, a later date

    def has_change_permission(self, request, obj=None) -> bool:
        # Rows already in force priced past usage: they stay as they are.
        return obj is None or obj.effective_from > timezone.now()

    def has_delete_permission(self, request, obj=None) -> bool:
        return obj is not None and obj.effective_from > timezone.now()

    # Writes go through the audited services; the rate and its variants are saved together.
    def save_model(self, request, obj, form, change) -> None:
        pass  # saved with its variants in save_related

    def save_related(self, request, form, formsets, change) -> None:
        variants, removed = [], []
        for formset in formsets:
            variants += formset.save(commit=False)
            removed += formset.deleted_objects
        services.save_rate(rate=form.instance, variants=variants, removed_variants=removed, actor=request.user)

    def delete_model(self, request, obj) -> None:
        services.delete_rate(rate=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for rate in queryset:
            services.delete_rate(rate=rate, actor=request.user)


@admin.register(TokenPack)
class TokenPackAdmin(ReadOnlyAdmin):
    list_display = ("reference", "team", "reseller", "tokens", "remaining", "purchased_at", "expires_at", "expired_at")
    list_filter = ("reseller",)
    search_fields = ("reference", "team__name", "team__slug")
    list_select_related = ("team", "reseller")
    date_hierarchy = "purchased_at"


@admin.register(CloudCreditBalance)
class CloudCreditBalanceAdmin(ReadOnlyAdmin):
    list_display = ("team", "credits", "remaining", "granted_at", "expires_at", "expired_at")
    list_select_related = ("team",)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "team", "kind", "amount", "pack", "credit_balance", "event", "note")
    list_filter = ("kind",)
    search_fields = ("team__slug", "pack__reference", "event__event_id")
    list_select_related = ("team", "pack", "credit_balance", "event")
    date_hierarchy = "at"


class ChargeInline(admin.TabularInline):
    model = Charge
    extra = 0
    can_delete = False
    readonly_fields = ("at", "status", "reason", "tokens", "cloud_credits")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = (
        "event_id",
        "team",
        "user",
        "product",
        "variant",
        "started_at",
        "status",
        "reason",
        "tokens",
        "cloud_credits",
    )
    list_filter = ("status", "reason", "product")
    search_fields = ("event_id", "user__email", "team__slug")
    list_select_related = ("team", "user")
    date_hierarchy = "started_at"
    inlines = [ChargeInline]


@admin.register(LedgerCheckRun)
class LedgerCheckRunAdmin(ReadOnlyAdmin):
    """The nightly ledger check's result per day (billing.alerts.run_ledger_check)."""

    list_display = ("day", "ok", "violation_count", "checked_at")
    list_filter = ("ok",)


@admin.register(LowBalanceState)
class LowBalanceStateAdmin(ReadOnlyAdmin):
    list_display = ("team", "is_low", "available", "limit", "crossed_at", "recovered_at", "alerts")
    list_filter = ("is_low",)
    list_select_related = ("team",)


@admin.register(ExpiryReminder)
class ExpiryReminderAdmin(ReadOnlyAdmin):
    list_display = ("pack", "threshold", "team", "announced", "created_at")
    list_filter = ("threshold", "announced")
    list_select_related = ("pack", "team")
