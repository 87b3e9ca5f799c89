from django.core.exceptions import ValidationError


class Conflict(ValidationError):
    """Well-formed but clashing with what exists (an order reference reused with other data)."""
