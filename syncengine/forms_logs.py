"""Filters of the support pages. Bad input (a malformed date, an unknown choice,
text too long) is a form error shown on the page, never an exception."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from .models import KIND_CHOICES, LogLevel, RunStatus, Trigger
from .selectors import LogQuery, log_actions

TEXT_MAX = 200
ANY = [("", "Any")]


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(0)), timezone.get_current_timezone())


class _MemberChoiceMixin:
    """Admins pick any member of the org (by public id); members only ever see their own."""

    def _set_members(self, members, *, can_choose: bool):
        self.can_choose_member = can_choose
        self._members = {str(m.public_id): m for m in members}
        if can_choose:
            self.fields["member"].choices = [("", "All members")] + [
                (str(m.public_id), m.user.email) for m in members
            ]
        else:
            del self.fields["member"]

    def chosen_member(self):
        value = self.cleaned_data.get("member") if self.can_choose_member else ""
        return self._members.get(value) if value else None


class DateRangeMixin:
    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError("The start date is after the end date.")
        return data

    def range(self) -> tuple[datetime | None, datetime | None]:
        since, until = self.cleaned_data.get("since"), self.cleaned_data.get("until")
        return (
            _day_start(since) if since else None,
            _day_start(until + timedelta(days=1)) if until else None,
        )


class LogFilterForm(_MemberChoiceMixin, DateRangeMixin, forms.Form):
    member = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(required=False, choices=ANY + KIND_CHOICES)
    run = forms.IntegerField(required=False, min_value=1, max_value=2**62, label="Run")
    level = forms.ChoiceField(required=False, choices=ANY + list(LogLevel.choices))
    action = forms.ChoiceField(required=False, choices=ANY + [(a, a) for a in log_actions()])
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(
        required=False, max_length=TEXT_MAX, min_length=3, strip=True, label="Text",
        widget=forms.TextInput(attrs={"placeholder": "message, title or e-mail", "type": "search"}),
    )

    def __init__(self, data, *, members, can_choose_member: bool):
        super().__init__(data)
        self._set_members(members, can_choose=can_choose_member)

    def query(self) -> LogQuery:
        d = self.cleaned_data
        member = self.chosen_member()
        since, until = self.range()
        return LogQuery(
            membership_id=member.pk if member else None,
            kind=d.get("kind") or "",
            run_id=d.get("run"),
            level=d.get("level") or "",
            action=d.get("action") or "",
            since=since,
            until=until,
            text=d.get("q") or "",
        )


class RunFilterForm(_MemberChoiceMixin, forms.Form):
    member = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(required=False, choices=ANY + KIND_CHOICES)
    status = forms.ChoiceField(required=False, choices=ANY + list(RunStatus.choices))
    trigger = forms.ChoiceField(required=False, choices=ANY + list(Trigger.choices))

    def __init__(self, data, *, members, can_choose_member: bool):
        super().__init__(data)
        self._set_members(members, can_choose=can_choose_member)


class TraceForm(forms.Form):
    item = forms.CharField(
        required=False, max_length=TEXT_MAX, strip=True, label="Item",
        widget=forms.TextInput(attrs={"placeholder": "title, e-mail, Outlook or Salesforce id",
                                      "type": "search"}),
    )


class BundleForm(_MemberChoiceMixin, DateRangeMixin, forms.Form):
    member = forms.ChoiceField(required=True)
    since = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))
    redact_emails = forms.BooleanField(required=False, initial=True, label="Hide e-mail addresses")
    redact_titles = forms.BooleanField(required=False, initial=True, label="Hide item titles")

    def __init__(self, data, *, members, can_choose_member: bool, initial=None):
        super().__init__(data, initial=initial)
        self._set_members(members, can_choose=True)
        if not can_choose_member:
            # A member's bundle is their own: the only choice offered.
            self.fields["member"].widget = forms.HiddenInput()
