from django.apps import AppConfig


class BrightRunConfig(AppConfig):
    name = "brightrun"
    verbose_name = "Bright Run"
    default_auto_field = "django.db.models.BigAutoField"
