from django.db import migrations

DEFAULT_CATEGORIES = [
    ("Art", "art"),
    ("Community", "community"),
    ("Design", "design"),
    ("Film", "film"),
    ("Food", "food"),
    ("Games", "games"),
    ("Music", "music"),
    ("Publishing", "publishing"),
    ("Technology", "technology"),
]


def create_categories(apps, schema_editor):
    Category = apps.get_model("projects", "Category")
    for name, slug in DEFAULT_CATEGORIES:
        Category.objects.get_or_create(slug=slug, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("projects", "0003_campaign_review_queue")]

    operations = [migrations.RunPython(create_categories, migrations.RunPython.noop)]
