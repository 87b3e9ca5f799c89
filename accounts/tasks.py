"""Thin Celery tasks: they load by id and call one function."""

from celery import shared_task

from accounts import notifications


@shared_task(name="accounts.send_invitation_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_invitation_email_task(invitation_id: int, token: str) -> None:
    notifications.send_invitation_email(invitation_id=invitation_id, token=token)


@shared_task(name="accounts.send_added_to_team_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_added_to_team_email_task(membership_id: int) -> None:
    notifications.send_added_to_team_email(membership_id=membership_id)
