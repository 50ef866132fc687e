from django.contrib import admin

from .models import Connection, SalesforceUsage


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    # token_blob is deliberately absent: not listed, not in the form, not searchable.
    list_display = ("membership", "provider", "status", "account_name", "last_used_at")
    list_filter = ("provider", "status")
    search_fields = ("account_name", "membership__user__email")
    fields = ("membership", "provider", "status", "account_name", "ms_tenant_id", "ms_object_id",
              "sf_user_id", "sf_org_id", "sf_instance_url", "scopes", "access_expires_at", "last_error",
              "last_error_at", "last_used_at", "connected_at")
    readonly_fields = fields
    list_select_related = ("membership__user", "membership__organization")

    def has_add_permission(self, request):
        return False  # connections are made through OAuth only


@admin.register(SalesforceUsage)
class SalesforceUsageAdmin(admin.ModelAdmin):
    list_display = ("organization", "sf_org_id", "used", "limit", "recorded_at")
