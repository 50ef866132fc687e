"""The Salesforce demo console, under /sandbox/console/salesforce/ on the dev server."""

from django.urls import path

from . import views_console

urlpatterns = [
    path("<str:key>/", views_console.console, name="sf-console"),
    path("<str:key>/records/<str:record_id>/save", views_console.record_save, name="sf-console-save"),
    path("<str:key>/records/<str:record_id>/delete", views_console.record_delete, name="sf-console-delete"),
]
