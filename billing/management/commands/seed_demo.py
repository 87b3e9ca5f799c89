"""Create the demo: resellers with sales reps, a Standard and a Premium team with every
role, a staff login, and each team's token history since March 2022 (packs, legacy cloud
credits, Flex assignments, usage replayed through the charging code). Deterministic and
re-runnable: what exists is left alone."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from accounts import demo, services
from accounts.models import Membership, Reseller, SalesRep, Team, User
from billing import demo as demo_usage


class Command(BaseCommand):
    help = "Create (or complete) the demo data and print every demo login."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            created = self._seed()
        with tqdm(
            total=demo_usage.estimated_events(),
            desc="Usage history",
            unit=" events",
            file=self.stderr._out,
            disable=options["verbosity"] < 1,
            bar_format="{desc}: {percentage:3.0f}%|{bar:30}| {n_fmt} {postfix}",
        ) as bar:

            def progress(count: int, label: str) -> None:
                bar.update(count)
                bar.set_postfix_str(label, refresh=False)

            events = demo_usage.seed_usage(progress=progress)
        self.stdout.write(self.style.SUCCESS(f"Demo ready ({created} new records, {events} usage events replayed)."))
        self._print_logins()

    def _user(self, email: str, first: str, last: str, staff: bool = False) -> tuple[User, int]:
        user = User.objects.filter(email=email).first()
        if user is not None:
            return user, 0
        return services.create_user(
            email=email, password=demo.DEMO_PASSWORD, first_name=first, last_name=last, is_staff=staff
        ), 1

    def _seed(self) -> int:
        created = self._user(*demo.STAFF, staff=True)[1]
        resellers = {}
        for spec in demo.RESELLERS:
            reseller = Reseller.objects.filter(slug=spec["slug"]).first()
            if reseller is None:
                reseller = services.create_reseller(name=spec["name"], slug=spec["slug"])
                created += 1
            rep, n = self._user(*spec["rep"])
            created += n
            if not SalesRep.objects.filter(reseller=reseller, user=rep).exists():
                services.add_sales_rep(reseller=reseller, email=rep.email)
                created += 1
            resellers[spec["slug"]] = reseller
        for spec in demo.TEAMS:
            team = Team.objects.filter(slug=spec["slug"]).first()
            if team is None:
                team = services.create_team(
                    reseller=resellers[spec["reseller"]],
                    **{k: spec[k] for k in ("name", "slug", "plan", "time_zone", "contract_start", "contract_end")},
                )
                created += 1
            primary = None
            for email, first, last, role in spec["members"]:
                user, n = self._user(email, first, last)
                created += n
                if not Membership.objects.filter(team=team, user=user).exists():
                    services.invite_user(team=team, email=email, role=role, actor=primary, notify=False, consented=True)
                    created += 1
                if role == "primary_admin":
                    primary = user
        return created

    def _print_logins(self) -> None:
        self.stdout.write("")
        self.stdout.write(f"Demo logins (password for all: {demo.DEMO_PASSWORD}) at {settings.FLEX_SITE_URL}/")
        rows = [("Platform staff", "(Django admin)", demo.STAFF[0])]
        for spec in demo.RESELLERS:
            rows.append(("Sales rep", spec["name"], spec["rep"][0]))
        for spec in demo.TEAMS:
            for email, _, _, role in spec["members"]:
                rows.append((role.replace("_", " ").capitalize(), spec["name"], email))
        width = max(len(r[0]) for r in rows)
        team_width = max(len(r[1]) for r in rows)
        for role, where, email in rows:
            self.stdout.write(f"  {role:<{width}}  {where:<{team_width}}  {email}")
