"""Every change to people, teams and roles, one module a topic (style: "split by topic"):

- ``people``: accounts that sign in, their flags and profile;
- ``teams``: resellers, sales reps, customer teams, and ``lock_team``;
- ``members``: invitations, roles, removal, the primary admin hand-over;
- ``csv_import``: bulk invitations from a CSV file;
- ``api_keys``: keys for programs;
- ``notices``: in-app notices with their e-mails, and the team's alert settings.

Each service is keyword-only, atomic, validates with a ``ValidationError`` a person can
read, writes its audit event in the same transaction and returns what it made. Import them
from here (``from accounts import services``).
"""

from accounts.services.api_keys import API_KEY_NAME_MAX_LENGTH, create_api_key, revoke_api_key, touch_api_key
from accounts.services.csv_import import CSV_COLUMNS, CsvPreview, CsvRow, bulk_invite, parse_member_csv
from accounts.services.members import (
    accept_invitation,
    change_role,
    invite_user,
    put_member,
    remove_member,
    resend_invitation,
    transfer_primary_admin,
)
from accounts.services.notices import (
    MAX_LOW_BALANCE_TOKENS,
    mark_all_notifications_read,
    mark_notification_read,
    notify,
    update_alert_settings,
)
from accounts.services.people import create_user, normalize_email, set_user_flags, update_profile
from accounts.services.teams import (
    add_sales_rep,
    create_reseller,
    create_team,
    lock_team,
    lock_teams,
    record_team,
    update_team_settings,
)

__all__ = [
    "API_KEY_NAME_MAX_LENGTH",
    "CSV_COLUMNS",
    "MAX_LOW_BALANCE_TOKENS",
    "CsvPreview",
    "CsvRow",
    "accept_invitation",
    "add_sales_rep",
    "bulk_invite",
    "change_role",
    "create_api_key",
    "create_reseller",
    "create_team",
    "create_user",
    "invite_user",
    "lock_team",
    "lock_teams",
    "mark_all_notifications_read",
    "mark_notification_read",
    "normalize_email",
    "notify",
    "parse_member_csv",
    "put_member",
    "record_team",
    "remove_member",
    "resend_invitation",
    "revoke_api_key",
    "set_user_flags",
    "touch_api_key",
    "transfer_primary_admin",
    "update_alert_settings",
    "update_profile",
    "update_team_settings",
]
