"""Thin Celery tasks: they load by id and call one function."""

from celery import shared_task

from accounts import notifications


@shared_task(name="accounts.send_invitation_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_invitation_email_task(invitation_id: int, token: str) -> None:
    notifications.send_invitation_email(invitation_id=invitation_id, token=token)


@shared_task(name="accounts.send_added_to_team_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_added_to_team_email_task(membership_id: int) -> None:
    notifications.send_added_to_team_email(membership_id=membership_id)


# At most once: the notice is claimed before sending (a retry after a failed send
# releases the claim first), so acknowledging on receipt loses nothing the schedule
# won't pick up (send_pending_notification_emails_task).
@shared_task(name="accounts.send_notification_email", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_notification_email_task(notification_id: int) -> None:
    notifications.send_notification_email(notification_id=notification_id)


@shared_task(name="accounts.send_pending_notification_emails", acks_late=True, reject_on_worker_lost=True)
def send_pending_notification_emails_task() -> int:
    return notifications.send_pending_notification_emails()
