"""User Management's Flex pages, through the client: By User with its Flex column, filter,
sort and export; a person's Flex and its history; bulk changes with their confirmation;
the CSV import's flex column; By Product. Bad input gets a clear message and changes nothing."""

from __future__ import annotations

import csv
import html
import io
from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import AuditEvent, Membership, User
from billing import services
from billing.models import FlexAssignment
from tests.accounts.test_security_headers import inline_markup
from tests.factories import MembershipFactory, UserFactory

TEAM = "own-team"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def text(response) -> str:
    return html.unescape(response.content.decode())


def url(name: str, *args) -> str:
    return reverse(name, args=[TEAM, *args])


def current(team, user) -> FlexAssignment | None:
    return FlexAssignment.objects.filter(team=team, user=user, removed_at__isnull=True).first()


def flex_rows() -> list[tuple]:
    return list(
        FlexAssignment.objects.order_by("pk").values_list("pk", "user_id", "all_products", "products", "removed_at")
    )


@pytest.fixture
def flex(personas):
    """Mia may use AutoCAD and Revit, Sid all products, the others nothing."""
    team = personas.team
    services.assign_flex(team=team, user=personas.member, products=["revit", "autocad"], actor=None, at=T0)
    services.assign_flex(team=team, user=personas.secondary_admin, products="all", actor=None, at=T0)
    return team


def emails_in_table(response) -> list[str]:
    return [row.record.user.email for row in response.context["table"].page.object_list]


# --- By User ---------------------------------------------------------------------------------------


def test_the_list_shows_each_persons_flex(admin_client, flex):
    response = admin_client.get(url("billing:member-list"))
    assert response.status_code == 200
    rows = {r.record.user.email: r for r in response.context["table"].page.object_list}
    assert rows["member@own.example"].get_cell("flex") == "AutoCAD; Revit"
    assert "All products" in rows["secondary@own.example"].get_cell("flex")
    assert "None" in rows["viewer@own.example"].get_cell("flex")
    body = text(response)
    assert "By User" in body and "By Product" in body
    assert inline_markup(response.content.decode()) == []


@pytest.mark.parametrize(
    "query,expected",
    [
        ({"flex": "assigned"}, ["member@own.example", "secondary@own.example"]),
        ({"flex": "none"}, ["primary@own.example", "viewer@own.example"]),
        ({"flex": "all"}, ["secondary@own.example"]),
        ({"flex": "list"}, ["member@own.example"]),
        ({"product": "revit"}, ["member@own.example", "secondary@own.example"]),
        ({"product": "inventor"}, ["secondary@own.example"]),  # through "all products"
        ({"product": "revit", "role": "member"}, ["member@own.example"]),
    ],
)
def test_the_flex_filter(admin_client, flex, query, expected):
    response = admin_client.get(url("billing:member-list"), query)
    assert sorted(emails_in_table(response)) == expected


def test_an_unknown_product_in_the_filter_is_named_on_the_form(admin_client, flex):
    response = admin_client.get(url("billing:member-list"), {"product": "maya"})
    assert response.status_code == 200
    assert response.context["filter"].form.errors["product"]
    assert "maya is not one of the available choices" in text(response)


def test_the_list_sorts_by_flex(admin_client, flex):
    response = admin_client.get(url("billing:member-list"), {"sort": "flex"})
    assert emails_in_table(response) == [
        "secondary@own.example",  # all products
        "member@own.example",  # a list
        "primary@own.example",  # none, then by name
        "viewer@own.example",
    ]
    response = admin_client.get(url("billing:member-list"), {"sort": "-flex"})
    assert emails_in_table(response)[-1] == "secondary@own.example"


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_the_export_has_exactly_the_rows_and_columns_shown(admin_client, flex, personas):
    page = admin_client.get(url("billing:member-list"), {"flex": "assigned", "sort": "-name"})
    rows = read_csv(admin_client.get(url("billing:member-export"), {"flex": "assigned", "sort": "-name"}))
    assert rows[0] == ["Name", "E-mail", "Flex", "Role", "Status", "Added"]
    assert [r[1] for r in rows[1:]] == emails_in_table(page) == ["secondary@own.example", "member@own.example"]
    added = personas.membership(personas.secondary_admin).created_at.date().isoformat()
    assert rows[1] == ["Sid Secondary", "secondary@own.example", "All products", "Secondary admin", "Active", added]
    assert rows[2][2] == "AutoCAD; Revit"
    # The list links to the export with its filter and order.
    assert 'href="/teams/own-team/users/export/?flex=assigned&amp;sort=-name"' in page.content.decode()


def test_the_export_covers_every_page_and_defuses_formulas(admin_client, personas):
    for n in range(30):
        MembershipFactory(team=personas.team, user=UserFactory(email=f"formula{n:02}@own.example", first_name="=cmd|x"))
    rows = read_csv(admin_client.get(url("billing:member-export")))
    assert len(rows) == 1 + 34  # every member, not the 25 of the first page
    # A name that a spreadsheet would run as a formula is written as text.
    formulas = [r[0] for r in rows if r[1].startswith("formula")]
    assert len(formulas) == 30 and all(name.startswith("'=cmd|x ") for name in formulas)


# --- A person's page --------------------------------------------------------------------------------


def test_the_member_page_shows_the_flex_and_its_history(admin_client, flex, personas):
    membership = personas.membership(personas.member)
    services.assign_flex(team=flex, user=personas.member, products="all", actor=personas.primary_admin)
    response = admin_client.get(url("billing:member-detail", membership.pk))
    assert response.status_code == 200
    body = text(response)
    assert "May spend tokens on <strong>All products</strong> (products added later included)" in body
    history = [(row.get_cell("scope"), row.get_cell("assigned_by")) for row in response.context["history"].rows]
    assert history == [("All products", "Pat Primary"), ("AutoCAD; Revit", "—")]
    assert inline_markup(response.content.decode()) == []


def test_assigning_a_list_of_products_then_all_then_removing(admin_client, personas):
    membership = personas.membership(personas.report_viewer)
    flex_url = url("billing:member-flex", membership.pk)
    response = admin_client.post(flex_url, {"scope": "list", "products": ["revit", "autocad"]}, follow=True)
    assert "Val Viewer may now spend tokens on: AutoCAD; Revit." in text(response)
    assert current(personas.team, personas.report_viewer).products == ["autocad", "revit"]

    response = admin_client.post(flex_url, {"scope": "list", "products": ["autocad", "revit"]}, follow=True)
    assert "already had Flex for AutoCAD; Revit. Nothing changed." in text(response)

    # "All products" wins over boxes left ticked.
    admin_client.post(flex_url, {"scope": "all", "products": ["revit"]})
    assert current(personas.team, personas.report_viewer).all_products

    response = admin_client.post(url("billing:member-flex-remove", membership.pk), follow=True)
    assert "Flex removed: Val Viewer can no longer spend tokens." in text(response)
    assert current(personas.team, personas.report_viewer) is None
    assert FlexAssignment.objects.filter(team=personas.team, user=personas.report_viewer).count() == 2
    events = AuditEvent.objects.filter(team=personas.team, target_id=str(personas.report_viewer.pk))
    assert sorted(events.values_list("action", flat=True)) == ["flex.assigned", "flex.assigned", "flex.removed"]

    response = admin_client.post(url("billing:member-flex-remove", membership.pk), follow=True)
    assert "had no Flex assignment; nothing changed" in text(response)


def test_an_unknown_product_code_is_refused_on_the_form_and_changes_nothing(admin_client, flex, personas):
    membership = personas.membership(personas.member)
    before = flex_rows()
    response = admin_client.post(url("billing:member-flex", membership.pk), {"scope": "list", "products": ["maya"]})
    assert response.status_code == 400
    assert "Unknown product code “maya”: pick products from the rate sheet." in text(response)
    assert flex_rows() == before


def test_a_list_without_products_is_refused_with_a_reason(admin_client, personas):
    membership = personas.membership(personas.member)
    response = admin_client.post(url("billing:member-flex", membership.pk), {"scope": "list"})
    assert response.status_code == 400
    assert "Tick at least one product, or choose “All products”." in text(response)
    assert not FlexAssignment.objects.exists()


def test_flex_for_somebody_of_another_team_is_not_found_and_changes_nothing(admin_client, personas):
    foreign = Membership.objects.get(team=personas.other_team, user=personas.outsider)
    for name, data in [("billing:member-flex", {"scope": "all"}), ("billing:member-flex-remove", {})]:
        response = admin_client.post(url(name, foreign.pk), data)
        assert response.status_code == 404
    assert admin_client.get(url("billing:member-detail", foreign.pk)).status_code == 404
    assert not FlexAssignment.objects.exists()


def test_the_role_form_still_works_from_billings_page(admin_client, personas):
    membership = personas.membership(personas.member)
    response = admin_client.post(
        reverse("accounts:member-role", args=[TEAM, membership.pk]), {"role": "report_viewer"}, follow=True
    )
    assert response.redirect_chain[-1][0] == url("billing:member-detail", membership.pk)
    assert "is now a report viewer" in text(response)


# --- Bulk -------------------------------------------------------------------------------------------


@pytest.fixture
def crew(personas):
    people = []
    for n in range(3):
        user = UserFactory(email=f"crew{n}@own.example", first_name=f"Crew{n}", last_name="Member")
        people.append(MembershipFactory(user=user, team=personas.team))
    return people


def test_the_bulk_page_lists_exactly_who_changes_and_how(admin_client, flex, personas, crew):
    mia = personas.membership(personas.member)
    sid = personas.membership(personas.secondary_admin)
    response = admin_client.get(
        url("billing:member-bulk"), {"action": "assign", "member": [mia.pk, sid.pk, crew[0].pk]}
    )
    assert response.status_code == 200
    rows = [(r["email"], r["now"], r["after"], r["changes"]) for r in response.context["changes"].data.data]
    assert rows == [
        ("crew0@own.example", "None", "All products", True),
        ("member@own.example", "AutoCAD; Revit", "All products", True),
        ("secondary@own.example", "All products", "All products", False),
    ]
    body = text(response)
    assert "2 people will change" in body and "Assign Flex to 2 people" in body
    assert inline_markup(response.content.decode()) == []
    assert not AuditEvent.objects.filter(action="flex.assigned").exclude(actor=None).exists()  # nothing saved yet


def test_bulk_assign_of_a_list_then_confirm(admin_client, personas, crew):
    ids = [m.pk for m in crew]
    query = {"action": "assign", "member": ids, "scope": "list", "products": ["revit"]}
    preview = admin_client.get(url("billing:member-bulk"), query)
    assert [r["after"] for r in preview.context["changes"].data.data] == ["Revit"] * 3
    assert not FlexAssignment.objects.exists()  # the preview writes nothing

    response = admin_client.post(url("billing:member-bulk"), query, follow=True)
    assert "Flex (Revit) assigned to 3 people." in text(response)
    assert all(current(personas.team, m.user).products == ["revit"] for m in crew)
    assert AuditEvent.objects.filter(team=personas.team, action="flex.assigned").count() == 3


def test_bulk_remove(admin_client, flex, personas, crew):
    mia = personas.membership(personas.member)
    response = admin_client.post(
        url("billing:member-bulk"), {"action": "remove", "member": [mia.pk, crew[0].pk]}, follow=True
    )
    body = text(response)
    assert "Flex removed from 1 person. 1 person already had no Flex; left as they were." in body
    assert current(personas.team, personas.member) is None
    assert current(personas.team, personas.secondary_admin) is not None


def test_all_matching_the_filter_selects_every_page_and_the_confirmation_names_them(admin_client, personas):
    for n in range(30):
        MembershipFactory(team=personas.team, user=UserFactory(email=f"m{n:02}@own.example"))
    response = admin_client.get(
        url("billing:member-bulk"), {"action": "assign", "all": "1", "q": "m", "role": "member"}
    )
    emails = [r["email"] for r in response.context["changes"].data.data]
    assert len(emails) == 31 and "member@own.example" in emails and "viewer@own.example" not in emails
    # The confirmation posts the people it lists, by id: not the filter, which may match others later.
    body = response.content.decode()
    assert body.count('name="member"') == 31 and 'name="all"' not in body.split('class="form-actions confirm-bulk"')[1]


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_selection_naming_another_teams_user_changes_nothing(admin_client, flex, personas, method):
    foreign = Membership.objects.get(team=personas.other_team, user=personas.outsider)
    mia = personas.membership(personas.member)
    before = (flex_rows(), AuditEvent.objects.count())
    for action in ("assign", "remove"):
        data = {"action": action, "member": [mia.pk, foreign.pk], "scope": "all"}
        response = getattr(admin_client, method)(url("billing:member-bulk"), data)
        assert response.status_code == 400
        body = text(response)
        assert "Nothing was changed: the selection names somebody who is not a member of Own Team" in body
        assert "admin@other.example" not in body
        assert 'name="member"' not in body  # nothing to confirm
    assert (flex_rows(), AuditEvent.objects.count()) == before


def test_a_malformed_selection_or_an_unknown_product_is_refused(admin_client, flex, personas):
    mia = personas.membership(personas.member)
    before = flex_rows()
    response = admin_client.post(
        url("billing:member-bulk"), {"action": "assign", "member": ["1 OR 1=1"], "scope": "all"}
    )
    assert response.status_code == 400
    assert "The selection is not valid" in text(response)
    response = admin_client.post(
        url("billing:member-bulk"), {"action": "assign", "member": [mia.pk], "scope": "list", "products": ["maya"]}
    )
    assert response.status_code == 400
    assert "Unknown product code “maya”" in text(response)
    assert flex_rows() == before


def test_nothing_selected_goes_back_to_the_list_with_a_message(admin_client, personas):
    response = admin_client.get(url("billing:member-bulk"), {"action": "assign", "flex": "none"}, follow=True)
    assert response.redirect_chain[-1][0] == url("billing:member-list") + "?flex=none"
    assert "Select at least one user" in text(response)


# --- CSV import -------------------------------------------------------------------------------------


def upload(admin_client, content: str):
    return admin_client.post(
        url("billing:member-import"), {"file": SimpleUploadedFile("people.csv", content.encode(), "text/csv")}
    )


def test_the_import_previews_the_flex_column_then_applies_it_on_confirm(admin_client, personas):
    response = upload(admin_client, "First name,Last name,Email,Flex\nAda,Lovelace,ada@example.com,autocad;revit\n")
    assert response.status_code == 200
    body = text(response)
    assert "The row can be imported; the person gets Flex." in body and "AutoCAD; Revit" in body
    assert not User.objects.filter(email="ada@example.com").exists()
    response = admin_client.post(
        url("billing:member-import"), {"upload_id": response.context["upload_id"], "confirm": "1"}, follow=True
    )
    assert "Invited 1 person." in text(response)
    ada = User.objects.get(email="ada@example.com")
    assert current(personas.team, ada).products == ["autocad", "revit"]


def test_the_import_marks_an_unknown_product_code_and_offers_no_confirmation(admin_client, personas):
    response = upload(
        admin_client, "First name,Last name,Email,Flex\nAda,Lovelace,ada@example.com,all\nBo,Bad,bo@example.com,maya\n"
    )
    assert response.status_code == 400
    body = text(response)
    assert "1 of 2 rows needs fixing" in body
    assert "unknown product code “maya” in the Flex column" in body
    assert 'name="confirm"' not in body
    assert not User.objects.filter(email__in=["ada@example.com", "bo@example.com"]).exists()


# --- By Product -------------------------------------------------------------------------------------


def test_by_product_counts_who_may_use_each_product(admin_client, flex):
    response = admin_client.get(url("billing:flex-products"))
    assert response.status_code == 200
    counts = {
        r.record.product.code: (r.record.total, r.record.direct, r.record.through_all)
        for r in response.context["table"].rows
    }
    assert counts["autocad"] == (2, 1, 1)
    assert counts["inventor"] == (1, 0, 1)
    assert "2 of 4 users have Flex; 1 of them for all products" in text(response)
    assert inline_markup(response.content.decode()) == []


def test_a_product_opens_the_list_of_its_users(admin_client, flex):
    response = admin_client.get(url("billing:flex-product", "autocad"))
    assert response.status_code == 200
    records = {r.record.user.email: r.get_cell("through") for r in response.context["table"].rows}
    assert set(records) == {"member@own.example", "secondary@own.example"}
    assert "All products" in records["secondary@own.example"]
    assert records["member@own.example"] == "Their list of products"
    assert 'href="/teams/own-team/users/?product=autocad"' in response.content.decode()
    assert admin_client.get(url("billing:flex-product", "maya")).status_code == 404
