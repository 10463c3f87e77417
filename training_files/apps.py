from django.apps import AppConfig


class TrainingFilesConfig(AppConfig):
    name = "training_files"
    verbose_name = "Training files"
    default_auto_field = "django.db.models.BigAutoField"
