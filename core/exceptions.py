"""Error types every layer raises; the API turns them into its error shape (core.api)."""

from django.core.exceptions import ValidationError


class Conflict(ValidationError):
    """Well-formed but clashing with what exists (an order reference reused with other data)."""
