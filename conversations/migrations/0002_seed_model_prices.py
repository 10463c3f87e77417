from decimal import Decimal

from django.db import migrations

PRICES = [
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", Decimal("3"), Decimal("15")),
    ("claude-opus-4-1", "Claude Opus 4.1", Decimal("15"), Decimal("75")),
    ("claude-haiku-4-5", "Claude Haiku 4.5", Decimal("1"), Decimal("5")),
]


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("conversations", "ModelPrice")
    for model, name, price_in, price_out in PRICES:
        ModelPrice.objects.get_or_create(
            model=model,
            defaults={"display_name": name, "input_per_mtok": price_in, "output_per_mtok": price_out},
        )


class Migration(migrations.Migration):
    dependencies = [("conversations", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
