"""The sales rep's purchase planner for one customer (domain.md "What no peer does"): what
to buy and when, so that the balance lasts until the contract ends with as few tokens as
possible expiring unused. The engine is ``billing.planner`` (rules in docs/planner.md); its
inputs come from ``billing.plan_selectors.plan_inputs`` (two queries). Read-only: a
proposal's button opens Record a purchase pre-filled, and the rep confirms there.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from accounts.access import customer_view
from accounts.models import Team
from billing.forms import PlanOptionsForm
from billing.plan_chart import projection_chart, projection_rows
from billing.plan_selectors import BURN_WINDOW_DAYS, plan_inputs
from billing.tables import ProjectionTable, ProposalTable


@customer_view
@require_safe
def customer_plan(request: HttpRequest, team: Team) -> HttpResponse:
    now = timezone.now()
    form = PlanOptionsForm(request.GET or None)
    inputs = plan_inputs(team=team, now=now)
    plan = inputs.plan(**form.options())
    return render(
        request,
        "billing/customer_plan.html",
        {
            "team": team,
            "form": form,
            "inputs": inputs,
            "plan": plan,
            "chart": projection_chart(
                points=plan.points, proposals=plan.proposals, burn=plan.daily_burn, today=plan.today
            ),
            "proposals": ProposalTable(plan.proposals, team=team, today=plan.today),
            "projection": ProjectionTable(projection_rows(plan)),
            "burn_window_days": BURN_WINDOW_DAYS,
            "as_of": now,
            "breadcrumbs": [
                ("Customers", reverse("billing:customer-list")),
                (team.name, reverse("billing:customer-detail", args=[team.slug])),
                ("Purchase planner", None),
            ],
        },
    )
