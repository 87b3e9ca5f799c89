"""Plumbing with no domain: error types, the JSON API's shared parts, validators for text
and times, money rounding, and ``enqueue_on_commit``. It imports no other app of the project."""
