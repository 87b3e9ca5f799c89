"""django-filter filters of the Flex tokens page."""

import django_filters

from billing.models import LedgerEntry, PackStatus, TokenPack
from billing.tables import EVENT_LABELS


class PackFilter(django_filters.FilterSet):
    # ``state`` is annotated by ``billing.selectors.pack_list`` (``pack_status`` in SQL).
    status = django_filters.ChoiceFilter(
        field_name="state", choices=PackStatus.choices, empty_label="All statuses", label="Status"
    )

    class Meta:
        model = TokenPack
        fields = ["status"]


class TokenEventFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=list(EVENT_LABELS.items()), empty_label="All events", label="Event")

    class Meta:
        model = LedgerEntry
        fields = ["kind"]
