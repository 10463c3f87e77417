from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_group(apps, schema_editor):
    app_config = apps.get_app_config("conversations")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="Reviewers")
    group.permissions.add(
        Permission.objects.get(codename="review_conversation", content_type__app_label="conversations")
    )


class Migration(migrations.Migration):
    dependencies = [("conversations", "0003_review_and_enrichment"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
