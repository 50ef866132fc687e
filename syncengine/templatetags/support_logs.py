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
def side_label(side: str) -> str:
    return {"outlook": "Outlook", "salesforce": "Salesforce"}.get(side, side)
