from django.apps import AppConfig


class LinkpointConfig(AppConfig):
    name = "linkpoint"
    verbose_name = "LinkPoint"

    def ready(self):
        from . import checks  # noqa: F401  (registers the deploy checks)
