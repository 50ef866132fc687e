from django.urls import path

from . import views

app_name = "orgs"
urlpatterns = [
    path("o/<slug:org_slug>/", views.org_home, name="home"),
]
