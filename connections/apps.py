from django.apps import AppConfig


class ConnectionsConfig(AppConfig):
    name = "connections"

    def ready(self):
        from orgs.dashboard import register_panel

        from .selectors import connection_health, salesforce_usage

        register_panel(
            template="connections/_dashboard_panel.html",
            context=lambda ctx: {
                "health": connection_health(org=ctx.org),
                "sf_usage": salesforce_usage(org=ctx.org),
            },
            order=10,
        )
