from django.urls import path

from . import views

app_name = "policy"
# "me/" comes first: it must not be read as a kind.
urlpatterns = [
    path("me/", views.my_settings, name="my-settings"),
    path("me/time-zone/", views.my_time_zone, name="my-time-zone"),
    path("me/notices/<uuid:notice_id>/dismiss/", views.my_notice_dismiss, name="my-notice-dismiss"),
    path("me/<str:kind>/", views.my_settings, name="my-settings-kind"),
    path("me/<str:kind>/set/<str:field>/", views.my_settings_set, name="my-settings-set"),
    path("me/<str:kind>/reset/<str:field>/", views.my_settings_reset, name="my-settings-reset"),
    path("", views.org_policy, name="org-policy"),
    path("<str:kind>/", views.org_policy, name="org-policy-kind"),
    path("<str:kind>/set/<str:field>/", views.org_policy_set, name="org-policy-set"),
    path("<str:kind>/lock/<str:field>/", views.org_policy_lock, name="org-policy-lock"),
]
