from functools import cache
from zoneinfo import available_timezones

from django import forms

from .models import User


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    # available_timezones() reads the tz database from disk; once per process is plenty.
    return [(tz, tz.replace("_", " ")) for tz in sorted(available_timezones())]


class ProfileForm(forms.ModelForm):
    time_zone = forms.ChoiceField(choices=time_zone_choices, label="Time zone")

    class Meta:
        model = User
        fields = ["full_name", "time_zone"]
        labels = {"full_name": "Name"}
