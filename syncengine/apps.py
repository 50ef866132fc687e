from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedule(sender, **kwargs):
    # Infrastructure, not domain logic: the dispatcher's schedule row exists
    # wherever the tables do (idempotent by name).
    from .tasks import schedule_ensure

    schedule_ensure()


class SyncengineConfig(AppConfig):
    name = "syncengine"

    def ready(self):
        post_migrate.connect(_ensure_schedule, sender=self)
