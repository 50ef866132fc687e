"""Template helpers of the support pages: a decision's rule in words."""

from django import template

from ..engine.why import rule_text

register = template.Library()


@register.filter
def why_text(detail) -> str:
    """The sentence for the rule an entry's detail names ("" when it names none)."""
    detail = detail or {}
    text = rule_text(detail.get("rule", ""), detail)
    scope = detail.get("scope_rule")
    if scope:
        text = (text + " " + rule_text(scope, detail)).strip()
    return text


@register.filter
def field_value(value) -> str:
    """A logged field value as the review page shows it (a list as "a, b", not its repr);
    empty stays empty, so a create's Before column is blank."""
    from ..sync_pages import show_value

    return "" if value is None or value == "" else show_value(value)


@register.filter
def field_name(name: str) -> str:
    from ..sync_pages import field_label

    return field_label(str(name))


@register.filter
def match_words(rule: str, kind: str) -> str:
    """What a first-sync match paired two items by ("e-mail address"), not the rule's name."""
    from ..engine.plan import _match_words

    return _match_words(kind, str(rule))


@register.filter
def side_label(side: str) -> str:
    return {"outlook": "Outlook", "salesforce": "Salesforce"}.get(side, side)


@register.inclusion_tag("syncengine/logs/_attention.html")
def sync_attention(membership, org_slug: str) -> dict:
    """What needs the member's eye on My sync (selectors.attention_for), with the links
    to their run history and log. A few indexed queries, whatever the member's size."""
    from ..selectors import attention_for

    return {"attention": attention_for(membership) if membership else [], "org_slug": org_slug}


@register.filter
def duration(run) -> str:
    """How long a run took, in seconds or minutes ("" while it runs)."""
    if not getattr(run, "finished_at", None) or not run.started_at:
        return ""
    seconds = max(0, int((run.finished_at - run.started_at).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key, "")
