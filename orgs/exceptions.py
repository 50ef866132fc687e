from django.core.exceptions import ValidationError


class OrgRuleError(ValidationError):
    """A write that the organization's rules refuse; nothing was changed.

    A `ValidationError` so forms and views can show `.messages` inline as they
    would a field error.
    """
