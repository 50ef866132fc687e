"""The sandbox over plain HTTP on the dev server, so a person can look at it.

The same views answer in-process through sandbox/transport.py on the hosts
login.sandbox.test, graph.sandbox.test, login.salesforce.sandbox.test and
<org>.my.salesforce.sandbox.test.
"""

from django.urls import include, path

from sandbox.microsoft.views_console import outlook_console

app_name = "sandbox"
urlpatterns = [
    path("login/", include("sandbox.microsoft.urls_identity")),
    path("graph/", include("sandbox.microsoft.urls_graph")),
    path("salesforce/", include("sandbox.salesforce.urls")),
    path("console/salesforce/", include("sandbox.salesforce.urls_console")),
    path("console/outlook/<str:email>/", outlook_console, name="console-outlook"),
]
