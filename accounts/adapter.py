from urllib.parse import urlencode

from allauth.account.adapter import DefaultAccountAdapter
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from .services import AFTER_VERIFICATION_KEY


class AccountAdapter(DefaultAccountAdapter):
    def get_email_verification_redirect_url(self, email_address):
        """Back to what asked for the verification (an invitation), if anything did."""
        url = self.request.session.pop(AFTER_VERIFICATION_KEY, None)
        if not url or not url_has_allowed_host_and_scheme(url, allowed_hosts=None):
            return super().get_email_verification_redirect_url(email_address)
        if self.request.user.is_authenticated:
            return url
        return f"{reverse('account_login')}?{urlencode({'next': url})}"
