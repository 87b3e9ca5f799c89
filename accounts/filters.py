import django_filters
from django import forms
from django.db.models import Q, QuerySet

from accounts.models import AuditEvent


class AuditFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    start = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__lte", label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    class Meta:
        model = AuditEvent
        fields = ["q", "start", "end"]

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(
            Q(action__icontains=value) | Q(actor_email__icontains=value) | Q(target_repr__icontains=value)
        )
