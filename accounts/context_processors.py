from django.http import HttpRequest

from accounts.access import navigation
from accounts.selectors import teams_of_user


def portal(request: HttpRequest) -> dict:
    """What the shell (top bar, team switcher, left navigation) needs on every page."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    access = getattr(request, "team_access", None)
    return {
        "nav": navigation(request),
        "team_access": access,
        "current_team": access.team if access else None,
        "switcher_teams": teams_of_user(request.user),
    }
