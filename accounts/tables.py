import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import AuditEvent, Membership, Team


class MemberTable(tables.Table):
    name = tables.Column(
        accessor="user__first_name", verbose_name="Name", order_by=("user__first_name", "user__last_name")
    )
    email = tables.Column(accessor="user__email", verbose_name="E-mail")
    role = tables.Column()
    status = tables.Column(empty_values=(), orderable=False)
    created_at = tables.DateColumn(verbose_name="Added", format="M j, Y")

    class Meta:
        model = Membership
        fields = ("name", "email", "role", "status", "created_at")
        order_by = ("name",)
        attrs = {"class": "table"}
        empty_text = "No users match these filters."

    def __init__(self, *args, team_slug: str, **kwargs) -> None:
        self.team_slug = team_slug
        super().__init__(*args, **kwargs)

    def render_name(self, record: Membership) -> str:
        url = reverse("accounts:member-detail", args=[self.team_slug, record.pk])
        return format_html('<a href="{}">{}</a>', url, record.user.get_full_name())

    def render_status(self, record: Membership) -> str:
        return format_html('<span class="badge badge-{}">{}</span>', *member_status(record))


def member_status(membership: Membership) -> tuple[str, str]:
    """(css modifier, label) for a member's sign-in state."""
    if not membership.user.is_active:
        return "muted", "Deactivated"
    invitation = getattr(membership, "invitation", None)
    if invitation is not None and invitation.is_pending and not membership.user.has_usable_password():
        if invitation.is_expired():
            return "warn", "Invitation expired"
        return "info", "Invited"
    return "ok", "Active"


class AuditTable(tables.Table):
    created_at = tables.DateTimeColumn(verbose_name="When", format="M j, Y H:i")
    actor_email = tables.Column(verbose_name="Who", empty_values=(), default="System")
    action = tables.Column(verbose_name="What")
    target_repr = tables.Column(verbose_name="Whom / what", default="")
    ip_address = tables.Column(verbose_name="From", default="")
    details = tables.JSONColumn(orderable=False, verbose_name="Details")

    class Meta:
        model = AuditEvent
        fields = ("created_at", "actor_email", "action", "target_repr", "ip_address", "details")
        attrs = {"class": "table table-compact"}
        empty_text = "No activity recorded yet."


class CustomerTable(tables.Table):
    name = tables.Column(linkify=("accounts:customer-detail", {"slug": tables.A("slug")}))
    plan = tables.Column()
    reseller = tables.Column()
    contract_end = tables.DateColumn(verbose_name="Contract ends", format="M j, Y")
    member_count = tables.Column(verbose_name="Users")
    admin_count = tables.Column(verbose_name="Admins")

    class Meta:
        model = Team
        fields = ("name", "plan", "reseller", "contract_end", "member_count", "admin_count")
        attrs = {"class": "table"}
        empty_text = "Your reseller serves no customers yet."
