from django.urls import path

from . import views

app_name = "orgs"
urlpatterns = [
    path("o/<slug:org_slug>/", views.org_home, name="home"),
    path("o/<slug:org_slug>/members/", views.member_list, name="member-list"),
    path("o/<slug:org_slug>/members/invite/", views.invitation_create, name="invitation-create"),
    path("o/<slug:org_slug>/members/<uuid:membership_id>/role/", views.membership_change_role, name="membership-role"),
    path("o/<slug:org_slug>/members/<uuid:membership_id>/deactivate/", views.membership_deactivate, name="membership-deactivate"),
    path("o/<slug:org_slug>/members/<uuid:membership_id>/reactivate/", views.membership_reactivate, name="membership-reactivate"),
    path("o/<slug:org_slug>/members/<uuid:membership_id>/remove/", views.membership_remove, name="membership-remove"),
    path("o/<slug:org_slug>/invitations/<uuid:invitation_id>/resend/", views.invitation_resend, name="invitation-resend"),
    path("o/<slug:org_slug>/invitations/<uuid:invitation_id>/revoke/", views.invitation_revoke, name="invitation-revoke"),
    path("o/<slug:org_slug>/audit/", views.audit_log, name="audit-log"),
    path("o/<slug:org_slug>/settings/", views.org_settings, name="settings"),
    path("o/<slug:org_slug>/staff-enter/", views.staff_enter, name="staff-enter"),
    path("staff/orgs/", views.staff_directory, name="staff-directory"),
    path("invite/<str:token>/", views.invitation_accept, name="invitation-accept"),
    path("invite/<str:token>/verify-email/", views.invitation_send_verification,
         name="invitation-send-verification"),
]
