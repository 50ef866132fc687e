"""Salesforce's hosts: login.salesforce.sandbox.test and <org>.my.salesforce.sandbox.test.

Each pattern's name is its endpoint family for API accounting (sandbox/accounting.py).
"""

from django.urls import path, re_path

from . import views, views_oauth

V = r"^services/data/v(?P<version>\d+\.\d)/"
SOBJECT = r"(?P<sobject>[A-Za-z][A-Za-z0-9_]*)"

urlpatterns = [
    path("services/oauth2/authorize", views_oauth.authorize, name="sf-oauth-authorize"),
    path("services/oauth2/token", views_oauth.token, name="sf-oauth-token"),
    path("services/oauth2/revoke", views_oauth.revoke, name="sf-oauth-revoke"),
    path("services/oauth2/userinfo", views_oauth.userinfo, name="sf-oauth-userinfo"),
    path("id/<str:org_id>/<str:user_id>", views_oauth.identity, name="sf-identity"),
    re_path(r"^services/data/?$", views.versions, name="sf-versions"),
    re_path(V + r"?$", views.resources, name="sf-resources"),
    re_path(V + r"limits/?$", views.limits, name="sf-limits"),
    re_path(V + r"query/?$", views.query, name="sf-query"),
    re_path(V + r"query/(?P<locator>01g[0-9A-Za-z]{15})-(?P<offset>\d+)/?$", views.query, name="sf-query"),
    re_path(V + r"queryAll/?$", views.query_all, name="sf-query-all"),
    re_path(V + r"queryAll/(?P<locator>01g[0-9A-Za-z]{15})-(?P<offset>\d+)/?$", views.query_all,
            name="sf-query-all"),
    re_path(V + r"search/?$", views.search, name="sf-search"),
    re_path(V + r"sobjects/?$", views.sobjects, name="sf-sobjects"),
    re_path(V + r"sobjects/" + SOBJECT + r"/describe/?$", views.describe, name="sf-describe"),
    re_path(V + r"sobjects/" + SOBJECT + r"/updated/?$", views.updated, name="sf-updated"),
    re_path(V + r"sobjects/" + SOBJECT + r"/deleted/?$", views.deleted, name="sf-deleted"),
    re_path(V + r"sobjects/" + SOBJECT + r"/?$", views.sobject_root, name="sf-sobject"),
    re_path(V + r"sobjects/" + SOBJECT + r"/(?P<record_id>[^/]+)/fromThisEventOnwards/?$", views.event_from_here_on,
            name="sf-sobject"),
    re_path(V + r"sobjects/" + SOBJECT + r"/(?P<record_id>[^/]+)/?$", views.sobject_row, name="sf-sobject"),
    re_path(V + r"sobjects/" + SOBJECT + r"/(?P<field>[A-Za-z][A-Za-z0-9_]*)/(?P<value>[^/]+)/?$",
            views.sobject_by_external_id, name="sf-upsert"),
    re_path(V + r"composite/sobjects/?$", views.collections, name="sf-collections"),
    re_path(V + r"composite/sobjects/" + SOBJECT + r"/?$", views.collections, name="sf-collections"),
    re_path(V + r"composite/sobjects/" + SOBJECT + r"/(?P<field>[A-Za-z][A-Za-z0-9_]*)/?$", views.collections,
            name="sf-collections"),
    re_path(V + r"composite/?$", views.composite, name="sf-composite"),
]
