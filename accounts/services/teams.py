"""Resellers, their sales reps, and customer teams; the team lock."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.audit import write_audit_event
from accounts.models import Plan, Reseller, SalesRep, Team, User, validate_time_zone
from accounts.services.people import clean_names, normalize_email
from core.exceptions import Conflict
from core.validators import clean_text, text_problem

TEAM_NAME_MAX_LENGTH = 200  # Team.name


def lock_team(team: Team) -> Team:
    """The one lock on a team: every service that changes a team's memberships, settings or
    tokens takes it first, so two such changes of one team run one after the other."""
    return Team.objects.select_for_update().get(pk=team.pk)


def lock_teams(team_ids: list[int]) -> None:
    """``lock_team`` for several teams at once (a batch job), taken in id order: the order in
    which every service that needs two teams takes them, so no two can deadlock."""
    list(Team.objects.select_for_update().filter(pk__in=team_ids).order_by("pk").values_list("pk", flat=True))


@transaction.atomic
def create_reseller(*, name: str, slug: str, actor: User | None = None) -> Reseller:
    name = clean_text(name, field="name", label="The reseller's name", max_length=200, required=True)
    if Reseller.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A reseller with the slug “{slug}” already exists."})
    reseller = Reseller.objects.create(name=name, slug=slug)
    write_audit_event(action="reseller.created", actor=actor, reseller=reseller, target=reseller)
    return reseller


@transaction.atomic
def add_sales_rep(
    *,
    reseller: Reseller,
    email: str,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    actor: User | None = None,
) -> SalesRep:
    email = normalize_email(email)
    first_name, last_name = clean_names(first_name, last_name)
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email, password, first_name=first_name, last_name=last_name)
    if SalesRep.objects.filter(reseller=reseller, user=user).exists():
        raise ValidationError({"email": f"{email} is already a sales rep of {reseller}."})
    rep = SalesRep.objects.create(reseller=reseller, user=user)
    write_audit_event(action="sales_rep.added", actor=actor, reseller=reseller, target=user)
    return rep


def _validate_team_fields(*, name: str, plan: str, time_zone: str, contract_start: date, contract_end: date) -> None:
    errors: dict[str, str] = {}
    problem = text_problem(name.strip(), label="The team name", max_length=TEAM_NAME_MAX_LENGTH)
    if not name.strip():
        errors["name"] = "A team needs a name."
    elif problem:
        errors["name"] = problem
    if plan not in Plan.values:
        errors["plan"] = f"The plan must be one of: {', '.join(Plan.values)}."
    try:
        validate_time_zone(time_zone)
    except ValidationError as exc:
        errors["time_zone"] = exc.messages[0]
    if contract_end <= contract_start:
        errors["contract_end"] = "The contract must end after it starts."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def create_team(
    *,
    reseller: Reseller,
    name: str,
    slug: str,
    plan: str,
    time_zone: str,
    contract_start: date,
    contract_end: date,
    actor: User | None = None,
) -> Team:
    """A new customer team of a reseller. Its primary admin is invited separately."""
    _validate_team_fields(
        name=name, plan=plan, time_zone=time_zone, contract_start=contract_start, contract_end=contract_end
    )
    if Team.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": f"A team with the slug “{slug}” already exists."})
    team = Team.objects.create(
        reseller=reseller,
        name=name.strip(),
        slug=slug,
        plan=plan,
        time_zone=time_zone,
        contract_start=contract_start,
        contract_end=contract_end,
    )
    write_audit_event(
        action="team.created",
        actor=actor,
        team=team,
        reseller=reseller,
        target=team,
        details={"plan": plan, "contract_start": str(contract_start), "contract_end": str(contract_end)},
    )
    return team


@transaction.atomic
def update_team_settings(
    *, team: Team, name: str, time_zone: str, actor: User, report_names: bool | None = None
) -> Team:
    """Settings > Team: the name, the time zone and whether reports name people
    (``report_names``; None keeps it). One audit event lists what changed."""
    _validate_team_fields(
        name=name,
        plan=team.plan,
        time_zone=time_zone,
        contract_start=team.contract_start,
        contract_end=team.contract_end,
    )
    changes = {}
    if team.name != name.strip():
        changes["name"] = [team.name, name.strip()]
    if team.time_zone != time_zone:
        changes["time_zone"] = [team.time_zone, time_zone]
    if report_names is not None and team.report_names != report_names:
        changes["report_names"] = [team.report_names, report_names]
    if not changes:
        return team
    team.name = name.strip()
    team.time_zone = time_zone
    if report_names is not None:
        team.report_names = report_names
    team.save(update_fields=["name", "time_zone", "report_names"])
    write_audit_event(action="team.settings_changed", actor=actor, team=team, target=team, details=changes)
    return team


@transaction.atomic
def record_team(
    *,
    reseller: Reseller,
    name: str,
    slug: str,
    plan: str,
    time_zone: str,
    contract_start: date,
    contract_end: date,
    actor: User | None = None,
) -> tuple[Team, bool]:
    """``create_team``, idempotent on the slug: returns (team, created).

    The same team sent again (same reseller and data) returns the existing one (created
    False); a slug taken with other data, or by another reseller, raises ``Conflict``.
    """
    existing = Team.objects.select_related("reseller").filter(slug=slug).first()
    if existing is not None:
        same = existing.reseller_id == reseller.pk and (
            existing.name,
            existing.plan,
            existing.time_zone,
            existing.contract_start,
            existing.contract_end,
        ) == (name.strip(), plan, time_zone, contract_start, contract_end)
        if same:
            return existing, False
        message = f"A team with the slug “{slug}” already exists."
        raise Conflict({"slug": message})
    team = create_team(
        reseller=reseller,
        name=name,
        slug=slug,
        plan=plan,
        time_zone=time_zone,
        contract_start=contract_start,
        contract_end=contract_end,
        actor=actor,
    )
    return team, True
