"""The member's time-zone picker: the same field (choices, labels, widget) as My account."""

from __future__ import annotations

from django import forms

from accounts.forms import time_zone_choices


class TimeZoneForm(forms.Form):
    # Rendered only: the value is validated by services.validate_time_zone, whose message
    # names the refused input without echoing all of it back.
    time_zone = forms.ChoiceField(choices=time_zone_choices, label="My time zone")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.initial.get("time_zone")
        choices = time_zone_choices()
        if current and current not in dict(choices):
            # A zone the tz database dropped still shows as it is stored, not as the first option.
            self.fields["time_zone"].choices = [(current, current), *choices]
