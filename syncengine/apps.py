from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedule(sender, **kwargs):
    # Infrastructure, not domain logic: the dispatcher's schedule row exists
    # wherever the tables do (idempotent by name).
    from .tasks import schedule_ensure

    schedule_ensure()
    from .support import retention_schedule_ensure

    retention_schedule_ensure()
    from .services import alerts_schedule_ensure

    alerts_schedule_ensure()


def _support_panel(ctx) -> dict:
    from .selectors import runs_failed_recent_count

    return {"org_slug": ctx.org.slug, "failed": runs_failed_recent_count(org=ctx.org)}


def _health_panel(ctx) -> dict:
    from .views_dashboard import dashboard_context

    return dashboard_context(ctx)


def first_auto_needs_review(*, org, membership, kind, field, value):
    """Policy advisor: Auto on for a kind never synced offers a preview first (issue 11).

    The dispatcher does not start Auto for such a member until a first reviewed
    sync, so turning it on silently would look like "Auto does nothing".
    """
    from django.urls import reverse

    from policy.extensions import Advice
    from policy.registry import KIND_LABELS

    if field != "mode" or value != "auto":
        return []
    label = KIND_LABELS.get(kind, kind).lower()
    if membership is None:
        return [Advice(f"Members who have not synced {label} yet are asked to preview and review "
                       f"a first sync before Auto sync starts for them.")]
    from .selectors import kinds_synced

    if kind in kinds_synced(membership=membership):
        return []
    url = reverse("syncengine:my-sync", args=[org.slug]) + f"#card-{kind}"
    return [Advice(f"You have not synced {label} yet: preview what Auto would do first. "
                   "Auto sync starts after your first reviewed sync.", url, "Preview first", blocking=True)]


class SyncengineConfig(AppConfig):
    name = "syncengine"

    def ready(self):
        from policy.extensions import register_advisor

        post_migrate.connect(_ensure_schedule, sender=self)
        register_advisor(first_auto_needs_review)
        from orgs.dashboard import register_panel

        register_panel(template="syncengine/logs/_dashboard_panel.html", context=_support_panel,
                       order=60)
        register_panel(template="syncengine/dashboard/_panel.html", context=_health_panel, order=5)
        from orgs.dashboard import register_directory_columns

        from .selectors import org_summaries

        register_directory_columns(headers=("Members", "Needing attention", "API requests today"),
                                   template="syncengine/dashboard/_directory_cells.html",
                                   summaries=org_summaries)
