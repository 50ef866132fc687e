"""The org dashboard's forms: health filters and the governor / alert / forecast settings.
Bad input is a form error on the page; nothing is saved."""

from __future__ import annotations

from django import forms

from orgs.models import Role

from .models import KIND_CHOICES, AlertDelivery, SalesforceRefreshPolicy
from .selectors import HealthFilter

ANY = [("", "Any")]
STATE_CHOICES = [
    ("attention", "Needs attention"), ("healthy", "Healthy"), ("never_synced", "Never synced"),
    ("reconnect", "Needs to reconnect"),
]


class HealthFilterForm(forms.Form):
    kind = forms.ChoiceField(required=False, choices=ANY + KIND_CHOICES)
    state = forms.ChoiceField(required=False, choices=ANY + STATE_CHOICES)
    role = forms.ChoiceField(required=False, choices=ANY + list(Role.choices))
    after = forms.CharField(required=False, max_length=400, widget=forms.HiddenInput)

    def query(self) -> HealthFilter:
        data = self.cleaned_data if self.is_valid() else {}
        return HealthFilter(kind=data.get("kind", ""), state=data.get("state", ""),
                            role=data.get("role", ""))


class OrgSyncSettingsForm(forms.Form):
    api_share_percent = forms.IntegerField(
        label="Share of the Salesforce daily API limit LinkPoint may use (%)", min_value=1,
        max_value=100, error_messages={
            "min_value": "Enter a share between 1 and 100 percent.",
            "max_value": "Enter a share between 1 and 100 percent.",
            "invalid": "Enter a whole number between 1 and 100.",
            "required": "Enter a share between 1 and 100 percent.",
        })
    alert_delivery = forms.ChoiceField(
        label="Admins receive alerts", choices=AlertDelivery.choices,
        error_messages={"invalid_choice": "Choose immediately or a daily digest."})
    sf_refresh_policy = forms.ChoiceField(
        label="Salesforce refresh token policy (your connected app's setting)", required=False,
        choices=SalesforceRefreshPolicy.choices)
    sf_refresh_days = forms.IntegerField(label="N days (for the two policies that expire)", required=False, min_value=1,
                                         max_value=3650)

    def clean(self):
        data = super().clean()
        if data.get("sf_refresh_policy") in ("idle", "absolute") and not data.get("sf_refresh_days"):
            self.add_error("sf_refresh_days", "Enter the number of days of this policy.")
        if data.get("sf_refresh_policy") in ("", "until_revoked"):
            data["sf_refresh_days"] = None
        return data
