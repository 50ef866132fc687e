"""Microsoft identity platform on login.sandbox.test. Pattern names are endpoint families."""

from django.urls import path

from . import views_identity as v

urlpatterns = [
    path("<str:tenant>/v2.0/.well-known/openid-configuration", v.openid_configuration, name="identity-discovery"),
    path("<str:tenant>/discovery/v2.0/keys", v.jwks, name="identity-discovery"),
    path("<str:tenant>/oauth2/v2.0/authorize", v.authorize, name="identity-authorize"),
    path("<str:tenant>/oauth2/v2.0/token", v.token, name="identity-token"),
]
