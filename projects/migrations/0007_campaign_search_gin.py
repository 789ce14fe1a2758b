"""A GIN index for the discover page's full-text search, on PostgreSQL only.

The indexed expression is exactly the one ``projects.selectors._search`` builds (title
weighted A, summary B, story C, English configuration), so the planner matches a search to
it instead of computing every live campaign's vector. SQLite has no full-text search here.
"""

from django.db import migrations

INDEX = "projects_campaign_search_gin"
CREATE = f"""
CREATE INDEX IF NOT EXISTS {INDEX} ON projects_campaign USING gin ((
    (setweight(to_tsvector('english'::regconfig, COALESCE(title, '')), 'A')
     || setweight(to_tsvector('english'::regconfig, COALESCE(summary, '')), 'B'))
    || setweight(to_tsvector('english'::regconfig, COALESCE(description, '')), 'C')
))
"""


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("projects", "0006_campaign_updates_comments")]

    operations = [migrations.RunPython(create_index, drop_index)]
