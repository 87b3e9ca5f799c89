from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # Register the tasks, so services can send them by name (core.queue.enqueue_on_commit)
        # without importing the module that imports them.
        from billing import tasks  # noqa: F401
