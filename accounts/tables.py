import django_tables2 as tables
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html

from accounts.models import ApiKey, AuditEvent, Membership


def member_status(membership: Membership) -> tuple[str, str]:
    """(css modifier, label) for a member's sign-in state."""
    if not membership.user.is_active:
        return "muted", "Deactivated"
    invitation = getattr(membership, "invitation", None)
    if invitation is not None and invitation.is_pending:
        if invitation.is_expired():
            return "warn", "Invitation expired"
        return "info", "Invited"
    return "ok", "Active"


ACTION_LABELS = {
    "team.created": "Team created",
    "team.settings_changed": "Team settings changed",
    "member.invited": "User invited",
    "member.invitation_resent": "Invitation sent again",
    "member.invitation_accepted": "Invitation accepted",
    "member.role_changed": "Role changed",
    "member.removed": "User removed",
    "member.primary_admin_transferred": "Primary admin handed over",
    "member.bulk_invited": "Users imported from CSV",
    "flex.assigned": "Flex assigned",
    "flex.removed": "Flex removed",
    "pack.recorded": "Token pack recorded",
    "pack.moved": "Token pack moved",
    "cloud_credits.granted": "Cloud credits granted",
    "usage.refunded": "Usage refunded",
    "user.profile_changed": "Profile changed",
    "alerts.updated": "Alert settings changed",
    "api_key.created": "API key created",
    "api_key.revoked": "API key revoked",
}


def describe_details(details: dict, *, changes: bool = False) -> str:
    """Audit details as a person reads them: "time zone: UTC → Asia/Tokyo".

    ``changes``: the details map each field to its [old, new] values.
    """
    parts = []
    for key, value in (details or {}).items():
        if changes and isinstance(value, list) and len(value) == 2:
            value = f"{value[0]} → {value[1]}"
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        if isinstance(value, bool):
            value = "yes" if value else "no"
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)


class AuditTable(tables.Table):
    created_at = tables.DateTimeColumn(verbose_name="When", format="M j, Y H:i T")
    actor_email = tables.Column(verbose_name="Who", empty_values=(None, ""), default="System")
    action = tables.Column(verbose_name="What")
    target_repr = tables.Column(verbose_name="Whom / what", default="")
    ip_address = tables.Column(verbose_name="From", default="")
    details = tables.Column(orderable=False, verbose_name="Details", empty_values=())

    def render_action(self, value: str) -> str:
        return ACTION_LABELS.get(value, value.replace("_", " ").replace(".", ": "))

    def render_details(self, record: AuditEvent) -> str:
        if record.action == "member.role_changed":
            return (
                f"{record.details.get('from', '').replace('_', ' ')} → {record.details.get('to', '').replace('_', ' ')}"
            )
        return describe_details(record.details, changes=record.action.endswith("_changed")) or "—"

    class Meta:
        model = AuditEvent
        fields = ("created_at", "actor_email", "action", "target_repr", "ip_address", "details")
        attrs = {"class": "table table-compact"}
        empty_text = "No activity recorded yet."


class ApiKeyTable(tables.Table):
    name = tables.Column()
    prefix = tables.Column(verbose_name="Key", orderable=False)
    created_by = tables.Column(
        verbose_name="Created by", default="—", order_by=("created_by__first_name", "created_by__last_name")
    )
    created_at = tables.DateTimeColumn(verbose_name="Created", format="M j, Y H:i")
    last_used_at = tables.DateTimeColumn(verbose_name="Last used", format="M j, Y H:i", default="Never")
    status = tables.Column(empty_values=(), orderable=False)
    actions = tables.TemplateColumn(
        template_name="accounts/_partials/api_key_actions.html",
        verbose_name=format_html('<span class="visually-hidden">{}</span>', "Actions"),
        orderable=False,
    )

    class Meta:
        model = ApiKey
        fields = ("name", "prefix", "created_by", "created_at", "last_used_at", "status", "actions")
        attrs = {"class": "table"}
        empty_text = "This team has no API keys yet."

    def render_prefix(self, value: str) -> str:
        # Only the start of the key is known: enough to tell keys apart, useless to an attacker.
        return format_html("<code>{}…</code>", value)

    def render_created_by(self, record: ApiKey) -> str:
        return record.created_by.get_full_name()

    def render_status(self, record: ApiKey) -> str:
        if record.is_active:
            return format_html('<span class="badge badge-{}">{}</span>', "ok", "Active")
        revoked = date_format(timezone.localtime(record.revoked_at), "M j, Y")
        return format_html('<span class="badge badge-{}">Revoked {}</span>', "muted", revoked)
