from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from connections import views as connection_views
from linkpoint import admin_access
from linkpoint.views import favicon, healthz
from orgs import views as org_views

# The admin's own login form would skip allauth's second factor and rate limits: every
# sign-in goes through allauth's login (with `next`), the admin only admits staff sessions
# that passed a second factor (linkpoint/admin_access.py).
admin_access.install(admin.site, secure_admin_login(admin.site.login))

urlpatterns = [
    path("", org_views.home, name="home"),
    path("favicon.ico", favicon),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("account/", include("accounts.urls")),
    path("", include("orgs.urls")),
    path("o/<slug:org_slug>/policy/", include("policy.urls")),
    path("o/<slug:org_slug>/connections/", include("connections.urls")),
    # The OAuth redirect URI: one per provider and deployment, org carried in the session-bound state.
    path("connections/callback/<str:provider>/", connection_views.oauth_callback, name="connections-callback"),
    path("o/<slug:org_slug>/sync/", include("syncengine.urls")),
    # Always routed, answered only while SANDBOX_ENABLED (linkpoint.middleware.SandboxGateMiddleware):
    # a URLconf fixed at import time would depend on which test imported it first.
    path("sandbox/", include("sandbox.urls")),
]
