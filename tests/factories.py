"""factory-boy factories. They build rows directly for test set-up speed; the behaviour
under test always goes through the services."""

from datetime import date

import factory

from accounts.models import Membership, Reseller, Role, SalesRep, Team, User

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password(PASSWORD)


class ResellerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reseller

    name = factory.Sequence(lambda n: f"Reseller {n}")
    slug = factory.Sequence(lambda n: f"reseller-{n}")


class SalesRepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SalesRep

    reseller = factory.SubFactory(ResellerFactory)
    user = factory.SubFactory(UserFactory)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")
    plan = "standard"
    time_zone = "UTC"
    contract_start = date(2022, 1, 1)
    contract_end = date(2030, 12, 31)
    reseller = factory.SubFactory(ResellerFactory)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    team = factory.SubFactory(TeamFactory)
    role = Role.MEMBER
