from django.http import Http404, HttpRequest

from accounts.access import navigation, team_access
from accounts.selectors import teams_of_user, unread_notification_count


def portal(request: HttpRequest) -> dict:
    """What the shell (top bar, team switcher, left navigation) needs on every page."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    # Once per request: django-tables2 renders each table with a RequestContext of its own,
    # which would run this (and its queries) again for every table on the page.
    cached = getattr(request, "_portal_context", None)
    if cached is not None:
        return cached
    access = getattr(request, "team_access", None)
    if access is None and request.session.get("last_team"):
        # Pages outside a team (profile, password) keep the shell of the last team used.
        try:
            access = team_access(request.user, request.session["last_team"], perm=None)
        except Http404:
            access = None
    request._portal_context = {
        "nav": navigation(request, access),
        "team_access": access,
        "current_team": access.team if access else None,
        "switcher_teams": teams_of_user(request.user),
        "unread_notifications": unread_notification_count(user=request.user),
    }
    return request._portal_context
