from django.urls import path

from . import views_calendar, views_dashboard, views_logs, views_sync

app_name = "syncengine"
# Fixed words come before `<str:kind>/...` routes so they are never read as a kind.
urlpatterns = [
    path("", views_sync.my_sync, name="my-sync"),
    path("preview-settings/", views_sync.settings_preview, name="settings-preview"),
    path("runs/<int:run_id>/", views_sync.run_page, name="run"),
    path("runs/<int:run_id>/review/", views_sync.review, name="review"),
    path("runs/<int:run_id>/review/include/", views_sync.review_include, name="review-include"),
    path("runs/<int:run_id>/review/winner/", views_sync.review_winner, name="review-winner"),
    path("runs/<int:run_id>/review/apply/", views_sync.review_apply, name="review-apply"),
    path("runs/<int:run_id>/review/items/<int:change_id>/", views_sync.review_item, name="review-item"),
    path("history/", views_logs.history, name="history"),
    path("history/<int:run_id>/", views_logs.run_log, name="run-log"),
    path("logs/", views_logs.logs, name="logs"),
    path("logs/export.csv", views_logs.logs_export, name="logs-export"),
    path("trace/", views_logs.trace, name="trace"),
    path("bundle/", views_logs.bundle, name="bundle"),
    path("health/", views_dashboard.health, name="health"),
    path("health/export.csv", views_dashboard.health_export, name="health-export"),
    path("health/settings/", views_dashboard.dashboard_settings, name="dashboard-settings"),
    path("calendar/", views_calendar.calendar, name="calendar"),
    path("calendar/record/", views_calendar.record, name="calendar-record"),
    path("calendar/fields/", views_calendar.snapfields, name="snapfields"),
    path("calendar/events/<int:link_id>/unrecord/", views_calendar.unrecord, name="calendar-unrecord"),
    path("calendar/events/<int:link_id>/relate/", views_calendar.relate, name="calendar-relate"),
    path("calendar/events/<int:link_id>/relate/search/", views_calendar.relate_search, name="calendar-search"),
    path("calendar/events/<int:link_id>/relate/save/", views_calendar.relate_save, name="calendar-relate-save"),
    path("<str:kind>/card/", views_sync.card, name="card"),
    path("<str:kind>/start/", views_sync.start, name="start"),
    path("<str:kind>/pause/", views_sync.pause, name="pause"),
]
