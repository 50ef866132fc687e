from django import forms

from .access import OrgContext
from .models import ROLE_RANK, Organization, Role


def assignable_roles(ctx: OrgContext) -> list[tuple[str, str]]:
    """Roles the caller may hand out: none above their own."""
    return [(value, label) for value, label in Role.choices if ROLE_RANK[value] <= ctx.rank]


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail", widget=forms.EmailInput(attrs={"placeholder": "name@company.com", "autocomplete": "off"}))
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def __init__(self, *args, ctx: OrgContext, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = assignable_roles(ctx)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = ["name", "require_mfa_for_admins", "allowed_salesforce_org_id", "log_retention_days"]
        labels = {
            "log_retention_days": "Keep sync history and logs for (days)",
            "require_mfa_for_admins": "Require two-factor authentication for owners and admins",
            "allowed_salesforce_org_id": "Allowed Salesforce org id (optional)",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Left out of a post (an older form, a script): the current retention stays.
        self.fields["log_retention_days"].required = False

    def clean_log_retention_days(self):
        value = self.cleaned_data.get("log_retention_days")
        return self.instance.log_retention_days if value is None else value
