"""People: accounts that sign in, their flags and profile."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from accounts.audit import write_audit_event
from accounts.models import User
from core.validators import clean_text

NAME_MAX_LENGTH = 150  # User.first_name / last_name


def clean_names(first_name: str | None, last_name: str | None) -> tuple[str, str]:
    """A person's first and last name, stripped; line breaks, control characters and
    over-long names are refused (field-keyed, for the form or the API)."""
    return (
        clean_text(first_name, field="first_name", label="The first name", max_length=NAME_MAX_LENGTH),
        clean_text(last_name, field="last_name", label="The last name", max_length=NAME_MAX_LENGTH),
    )


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": f"“{email}” is not a valid e-mail address."}) from None
    return email


@transaction.atomic
def create_user(
    *,
    email: str,
    password: str | None,
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
    actor: User | None = None,
) -> User:
    """A person who can sign in at once (staff, demo logins); team admins use ``invite_user``."""
    email = normalize_email(email)
    first_name, last_name = clean_names(first_name, last_name)
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": f"{email} already has an account."})
    if password:
        validate_password(password)
    user = User.objects.create_user(
        email, password, first_name=first_name, last_name=last_name, is_staff=is_staff, is_superuser=is_staff
    )
    write_audit_event(action="user.created", actor=actor, target=user, details={"staff": is_staff})
    return user


@transaction.atomic
def set_user_flags(*, user: User, is_active: bool, is_staff: bool, actor: User | None) -> User:
    """Staff switch a person's access on or off (the Django admin calls this)."""
    changes = {
        name: [getattr(user, name), value]
        for name, value in (("is_active", is_active), ("is_staff", is_staff))
        if getattr(user, name) != value
    }
    if actor is not None and actor.pk == user.pk and changes:
        raise ValidationError("Staff can't change their own access; ask another staff member.")
    if not changes:
        return user
    user.is_active, user.is_staff = is_active, is_staff
    user.save(update_fields=["is_active", "is_staff"])
    write_audit_event(action="user.access_changed", actor=actor, target=user, details=changes)
    return user


@transaction.atomic
def update_profile(*, user: User, first_name: str, last_name: str) -> User:
    user.first_name, user.last_name = clean_names(first_name, last_name)
    user.save(update_fields=["first_name", "last_name"])
    write_audit_event(action="user.profile_changed", actor=user, target=user)
    return user
