from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and teams"

    def ready(self) -> None:
        # Register the tasks, so services can send them by name (core.queue.enqueue_on_commit)
        # without importing the module that imports them.
        from accounts import tasks  # noqa: F401
