from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "portal.accounts"
    label = "accounts"
    verbose_name = "Accounts, tokens and access"
    default_auto_field = "django.db.models.BigAutoField"
