"""Every change of billing state, one module a topic (style: "split by topic"):

- ``packs``: purchases, cloud-credit grants, expiry, moving a pack to another team;
- ``usage``: charging a batch of usage events, refunding a job;
- ``group_commit``: charging single events that arrive together for one team together;
- ``assignments``: who may spend tokens on what (Flex assignments), one person or many;
- ``member_import``: the CSV import of people with their Flex column;
- ``rates``: the rate sheet as staff change it.

Import the functions from here (``from billing import services``); the modules say where
each lives. Rules are named as in domain.md ("Charging rules").
"""

from billing.services.assignments import assign_flex, bulk_assign_flex, bulk_remove_flex, remove_flex
from billing.services.group_commit import log_event
from billing.services.member_import import ImportPreview, import_members, preview_member_import
from billing.services.packs import (
    PurchasePreview,
    expire_cloud_credits,
    expire_packs,
    grant_cloud_credits,
    move_pack,
    preview_purchase,
    record_purchase,
)
from billing.services.rates import delete_rate, save_rate
from billing.services.usage import log_usage, refund_usage

__all__ = [
    "ImportPreview",
    "PurchasePreview",
    "assign_flex",
    "bulk_assign_flex",
    "bulk_remove_flex",
    "delete_rate",
    "expire_cloud_credits",
    "expire_packs",
    "grant_cloud_credits",
    "import_members",
    "log_event",
    "log_usage",
    "move_pack",
    "preview_member_import",
    "preview_purchase",
    "record_purchase",
    "refund_usage",
    "remove_flex",
    "save_rate",
]
