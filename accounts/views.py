from allauth.mfa.models import Authenticator
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from .forms import ProfileForm
from .services import user_update_profile


@login_required
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user_update_profile(user=request.user, **form.cleaned_data)
        messages.success(request, "Your account was updated.")
        return redirect("accounts:profile")
    has_totp = Authenticator.objects.filter(user=request.user, type=Authenticator.Type.TOTP).exists()
    return render(request, "account/profile.html", {"form": form, "has_totp": has_totp})
