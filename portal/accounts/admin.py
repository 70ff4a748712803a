"""Accounts in the admin: tokens (revoke, never the key), applications (approve or refuse, the applicant
is mailed), accepted licences (read-only) and quotas (how staff raise a user's limits, also inline
on the user's page)."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from . import services, tokens
from .models import AccessApplication, ApiToken, LicenceAcceptance, Quota


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their users on the profile; staff may only see and revoke them."""

    list_display = ["name", "user", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix", "user__email", "user__username"]
    fields = ["user", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Revoke the selected tokens"), permissions=["view"])
    def revoke(self, request, queryset):
        n = 0
        for token in queryset.filter(revoked_at__isnull=True):
            tokens.revoke(token)
            n += 1
        self.message_user(request, _("%(n)d token(s) revoked.") % {"n": n})


@admin.register(AccessApplication)
class AccessApplicationAdmin(admin.ModelAdmin):
    """Approve or refuse with the actions, or by changing the status on an application's page (with a
    reply); either way :func:`portal.accounts.services.decide_application` records who and when and
    mails the applicant."""

    list_display = ["created_at", "applicant", "dataset", "institution", "status", "decided_at", "decided_by"]
    list_filter = ["status"]
    search_fields = ["user__email", "dataset__id", "dataset__title_en", "institution", "purpose"]
    fields = ["user", "dataset", "purpose", "institution", "created_at", "status", "reply", "decided_at", "decided_by"]
    readonly_fields = ["user", "dataset", "purpose", "institution", "created_at", "decided_at", "decided_by"]
    actions = ["approve", "refuse"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("applicant"), ordering="user__email")
    def applicant(self, obj):
        return obj.user.email or obj.user.get_username()

    def save_model(self, request, obj, form, change):
        status = obj.status
        if change and "status" in form.changed_data and status != AccessApplication.Status.PENDING:
            obj.status = AccessApplication.objects.values_list("status", flat=True).get(pk=obj.pk)
            services.decide_application(obj, status, request.user, reply=obj.reply)
            self.message_user(request, _("The applicant was told by e-mail."))
            return
        if status == AccessApplication.Status.PENDING:
            obj.decided_at = obj.decided_by = None
        super().save_model(request, obj, form, change)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "dataset", "decided_by")

    def _decide(self, request, queryset, status):
        n = sum(services.decide_application(a, status, request.user) for a in queryset)
        self.message_user(
            request,
            _("%(n)d application(s) %(status)s; the applicants were told by e-mail.") % {"n": n, "status": status},
            messages.SUCCESS,
        )

    @admin.action(description=_("Approve the selected applications (mail the applicants)"), permissions=["change"])
    def approve(self, request, queryset):
        self._decide(request, queryset, AccessApplication.Status.APPROVED)

    @admin.action(description=_("Refuse the selected applications (mail the applicants)"), permissions=["change"])
    def refuse(self, request, queryset):
        self._decide(request, queryset, AccessApplication.Status.REFUSED)


@admin.register(LicenceAcceptance)
class LicenceAcceptanceAdmin(admin.ModelAdmin):
    list_display = ["accepted_at", "user", "dataset", "licence_url", "version_number"]
    search_fields = ["user__email", "dataset__id", "licence_url"]
    readonly_fields = ["user", "dataset", "licence_url", "version_number", "accepted_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    """A user's own limits; an empty field keeps the default of the settings (``QUOTA_*``, ``RATE_*``)."""

    list_display = ["user", "concurrent_jobs", "bytes_per_day", "requests_per_minute", "note"]
    search_fields = ["user__email", "user__username", "note"]
    autocomplete_fields = ["user"]


class QuotaInline(admin.StackedInline):
    model = Quota
    can_delete = True
    extra = 0
    max_num = 1


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    """Django's user admin with the user's quota inline."""

    inlines = [*UserAdmin.inlines, QuotaInline]
