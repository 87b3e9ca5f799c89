"""Report rollups: kept up to date in the same transaction as every charge, refund and
move, so that no report ever scans raw events (billing.services writes them)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Team


class UsageRollup(models.Model):
    """Totals per team, day (in the team's time zone), product and user."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="usage_rollups")
    day = models.DateField()
    product = models.SlugField(max_length=64)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    tokens = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    cloud_credits = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    charges = models.PositiveIntegerField(default=0)
    denials = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team", "day", "product"]
        constraints = [
            models.UniqueConstraint(fields=["team", "day", "product", "user"], name="rollup_unique_group"),
            models.CheckConstraint(condition=Q(tokens__gte=0) & Q(cloud_credits__gte=0), name="rollup_not_negative"),
        ]
        indexes = [models.Index(fields=["team", "day"], name="rollup_team_day")]

    def __str__(self) -> str:
        return f"{self.team} {self.day} {self.product} {self.user_id}: {self.tokens}"
