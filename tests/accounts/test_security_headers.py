"""The Content-Security-Policy: every page answers with it, it allows no inline script,
and no page (nor template) carries inline script, inline style or an on*="" handler that
the policy would block. The browser side (no violation in Chromium's console) is
tests/browser/test_content_security_policy.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.views import LoginView
from django.urls import reverse

from accounts import services
from accounts.models import User
from tests.accounts.test_authorization_matrix import OTHER_PAGES, ROLES, TEAM_PAGES, _client_for, _url

TEAM = "own-team"

# The policy as docs/operations.md describes it; a page may add to it, never loosen these.
STRICT = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
    "base-uri": ["'self'"],
    "object-src": ["'none'"],
}

# What the policy blocks, as it would appear in HTML.
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*\btype=\"application/(?:ld\+)?json\")[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I)
STYLE_ELEMENT = re.compile(r"<style\b", re.I)
JAVASCRIPT_URL = re.compile(r"""\b(?:href|src|action|formaction)\s*=\s*["']?\s*javascript:""", re.I)


def directives(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']} ({response.status_code})"
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_strict(response) -> dict[str, list[str]]:
    policy = directives(response)
    assert "'unsafe-inline'" not in policy["script-src"], policy
    assert "'unsafe-eval'" not in policy["script-src"], policy
    assert "'unsafe-inline'" not in policy["style-src"], policy
    for name, values in STRICT.items():
        # A nonce may be added (the API docs page); nothing else.
        extra = [v for v in policy.get(name, []) if v not in values and not v.startswith("'nonce-")]
        assert policy.get(name, [])[: len(values)] == values and not extra, (name, policy)
    return policy


def inline_markup(html: str) -> list[str]:
    found = []
    for name, pattern in [
        ("inline <script>", INLINE_SCRIPT),
        ("on* handler", EVENT_HANDLER),
        ("style attribute", STYLE_ATTRIBUTE),
        ("<style> element", STYLE_ELEMENT),
        ("javascript: URL", JAVASCRIPT_URL),
    ]:
        found += [f"{name}: {match.group(0)[:120]}" for match in pattern.finditer(html)]
    return found


@pytest.fixture
def staff(db) -> User:
    return User.objects.create_superuser("staff@flexadmin.example", "staff-password-0451")


def test_the_policy_in_settings_is_the_strict_one():
    configured = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    assert {name: list(values) for name, values in configured.items()} == STRICT
    assert "csp.middleware.CSPMiddleware" in settings.MIDDLEWARE


# (who, path, status): the representative pages of every kind.
PAGES = [
    ("anonymous", "/auth/login/", 200),
    ("anonymous", "/auth/password_reset/", 200),
    ("anonymous", "/admin/login/", 200),
    ("anonymous", f"/teams/{TEAM}/", 302),
    ("anonymous", "/no-such-page/", 404),
    ("primary_admin", f"/teams/{TEAM}/", 200),
    ("primary_admin", f"/teams/{TEAM}/users/", 200),
    ("primary_admin", f"/teams/{TEAM}/users/invite/", 200),
    ("primary_admin", f"/teams/{TEAM}/users/import/", 200),
    ("primary_admin", f"/teams/{TEAM}/settings/", 200),
    ("primary_admin", f"/teams/{TEAM}/settings/activity/", 200),
    ("primary_admin", f"/teams/{TEAM}/settings/api-keys/", 200),
    ("primary_admin", f"/teams/{TEAM}/settings/alerts/", 200),
    ("primary_admin", "/notifications/", 200),
    ("primary_admin", "/account/", 200),
    ("primary_admin", "/account/password/", 200),
    ("primary_admin", "/no-such-page/", 404),
    ("report_viewer", f"/teams/{TEAM}/users/", 403),
    ("member", f"/teams/{TEAM}/", 200),
    ("sales_rep", "/customers/", 200),
    ("sales_rep", f"/customers/{TEAM}/", 200),
    ("staff", "/admin/", 200),
    ("staff", "/admin/accounts/user/", 200),
    ("staff", "/admin/accounts/apikey/", 200),
    ("staff", "/admin/billing/rate/add/", 200),
]


@pytest.mark.parametrize("who,path,status", PAGES)
def test_representative_pages_send_the_strict_policy_and_no_inline_markup(client, personas, staff, who, path, status):
    if who == "staff":
        client.force_login(staff)
    else:
        _client_for(client, personas, who)
    services.notify(users=[personas.primary_admin], team=personas.team, kind="low_balance", title="Low", body="…")
    response = client.get(path)
    assert response.status_code == status
    assert_strict(response)
    if response.get("Content-Type", "").startswith("text/html"):
        assert inline_markup(response.content.decode()) == []


def test_a_new_api_key_page_has_no_inline_script(admin_client, personas):
    # The page that shows a new key once used to carry the copy button's script inline.
    response = admin_client.post(reverse("accounts:api-keys", args=[TEAM]), {"name": "Build"}, follow=True)
    html = response.content.decode()
    assert 'data-copy-from="new-api-key"' in html
    assert_strict(response)
    assert inline_markup(html) == []


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_the_authorization_matrix_sends_the_policy(client, personas, role):
    """Whatever the answer (200, 302, 403, 404, 405), it carries the strict policy."""
    _client_for(client, personas, role)
    teams = (personas.team, personas.other_team)
    pages = [(name, kind, team) for name, (kind, _) in TEAM_PAGES.items() for team in teams]
    pages += [(name, kind, personas.team) for name, (kind, _) in OTHER_PAGES.items()]
    for url_name, kind, team in pages:
        response = client.get(_url(url_name, kind, team, personas))
        assert_strict(response)
        if response.status_code == 200 and not response.streaming:  # an export is a file, not a page
            assert inline_markup(response.content.decode()) == [], url_name


def test_the_api_docs_page_lets_only_its_own_script_run_through_a_nonce(client, db):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    policy = assert_strict(response)
    [nonce] = [v.removeprefix("'nonce-").removesuffix("'") for v in policy["script-src"] if v.startswith("'nonce-")]
    html = response.content.decode()
    # The one inline script carries this response's nonce; there is no inline style.
    assert re.findall(r"<script nonce=\"([^\"]+)\">", html) == [nonce]
    assert [m for m in inline_markup(html) if "nonce=" not in m] == []
    # A nonce is new for every response.
    assert nonce not in client.get("/api/v1/docs").headers["Content-Security-Policy"]


def test_other_pages_carry_no_nonce(admin_client):
    policy = directives(admin_client.get(f"/teams/{TEAM}/"))
    assert policy["script-src"] == ["'self'"]


def test_api_json_responses_send_the_policy_too(client, personas):
    key = services.create_api_key(team=personas.team, name="tests", actor=None)[1]
    ok = client.get("/api/v1/rates", headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200 and ok["Content-Type"] == "application/json"
    assert_strict(ok)
    refused = client.get("/api/v1/rates")
    assert refused.status_code == 401
    assert_strict(refused)
    assert_strict(client.get("/api/v1/schema"))


def test_the_server_error_page_sends_the_policy_and_has_no_inline_style(client, db, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(LoginView, "get_context_data", fail)
    client.raise_request_exception = False
    response = client.get("/auth/login/")
    assert response.status_code == 500
    assert_strict(response)
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "css/portal.css" in html
    assert inline_markup(html) == []


TEMPLATE_DIRS = [Path(settings.BASE_DIR) / "templates"] + [
    path for path in Path(settings.BASE_DIR).glob("*/templates") if ".venv" not in path.parts
]
# E-mails are not web pages: mail clients need their inline styles.
EMAIL_TEMPLATES = {"email", "password_reset_email.html"}


def _web_templates() -> list[Path]:
    return sorted(
        path
        for folder in TEMPLATE_DIRS
        for path in folder.rglob("*.html")
        if not EMAIL_TEMPLATES.intersection(path.relative_to(folder).parts)
    )


def test_templates_have_no_inline_script_style_or_handlers():
    """Behaviour belongs in static/js/portal.js and looks in static/css/portal.css; the one
    exception is the API docs page's script, which carries the request's nonce."""
    templates = _web_templates()
    assert len(templates) > 30
    found = {}
    for path in templates:
        problems = [m for m in inline_markup(path.read_text()) if "nonce=" not in m]
        if problems:
            found[str(path.relative_to(settings.BASE_DIR))] = problems
    assert found == {}
