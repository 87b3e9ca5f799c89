"""Make an API key for a team or a reseller and print it: the key is the last line, so
``manage.py create_api_key --team acme | tail -n 1`` (or ``-v 0``) gives the key alone."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_slug
from django.db import transaction

from accounts import services
from accounts.models import Reseller, Team

DEFAULT_NAME = "Created with manage.py create_api_key"
WARNING = "Store it now: it is shown only this once and can't be recovered."


class Command(BaseCommand):
    help = (
        "Create an API key for a team (--team SLUG) or a reseller (--reseller SLUG, created if it does not "
        "exist) and print it once: its last line is the key."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", metavar="SLUG", help="The team the key acts for.")
        parser.add_argument(
            "--reseller", metavar="SLUG", help="The reseller the key acts for; created (named from the slug) if new."
        )
        parser.add_argument("--name", default=DEFAULT_NAME, help="What the key is for, as people will see it.")

    def handle(self, *args, team: str | None, reseller: str | None, name: str, **options) -> None:
        if team and reseller:
            raise CommandError("Give either --team SLUG or --reseller SLUG, not both: a key acts for one of them.")
        if not team and not reseller:
            raise CommandError("Give --team SLUG or --reseller SLUG: the key must act for a team or a reseller.")
        try:
            with transaction.atomic():
                lines, secret = self._team_key(team, name) if team else self._reseller_key(reseller, name)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        if options["verbosity"] > 0:
            for line in lines:
                self.stdout.write(line)
        self.stdout.write(secret)

    def _team_key(self, slug: str, name: str) -> tuple[list[str], str]:
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            raise CommandError(f"There is no team with the slug “{slug}”.")
        key, secret = services.create_api_key(team=team, name=name, actor=None)
        return [f"API key “{key.name}” ({key.prefix}…) for team {team.name} ({team.slug}).", WARNING], secret

    def _reseller_key(self, slug: str, name: str) -> tuple[list[str], str]:
        lines = []
        reseller = Reseller.objects.filter(slug=slug).first()
        if reseller is None:
            max_length = Reseller._meta.get_field("slug").max_length
            try:
                validate_slug(slug)
                if len(slug) > max_length:
                    raise ValidationError("too long")
            except ValidationError:
                raise CommandError(
                    f"“{slug}” can't be a reseller's slug: use up to {max_length} letters, digits, hyphens "
                    "and underscores."
                ) from None
            reseller = services.create_reseller(name=slug.replace("-", " ").replace("_", " ").title(), slug=slug)
            lines.append(f"Created reseller {reseller.name} ({reseller.slug}).")
        key, secret = services.create_api_key(reseller=reseller, name=name, actor=None)
        lines += [f"API key “{key.name}” ({key.prefix}…) for reseller {reseller.name} ({reseller.slug}).", WARNING]
        return lines, secret
