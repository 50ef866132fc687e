"""My sync's share of the org dashboard: the API budget notice and the member's open alerts."""

from django import template

register = template.Library()


@register.inclusion_tag("syncengine/dashboard/_my_sync_notices.html")
def sync_budget_and_alerts(ctx):
    from ..governor import budget_for
    from ..selectors import alerts_open

    budget = budget_for(ctx.org.pk)
    alerts = alerts_open(org=ctx.org, membership=ctx.membership) if ctx.membership else []
    return {"budget": budget, "alerts": alerts}
