"""Migration operations the built-in ones do with more locking than needed."""

from django.db import migrations
from django.db.models import Index


def foreign_key_index_drop(
    *, app_label: str, model_name: str, field: str, field_after
) -> migrations.SeparateDatabaseAndState:
    """Drop the index of a foreign key (``db_index=False``) and nothing else.

    ``AlterField`` to ``db_index=False`` drops the foreign key constraint and adds it again on
    PostgreSQL, which checks every row of the table while holding a lock that stops writes. The
    constraint does not change, so only its index is dropped here (the name Django gave it is
    looked up, as ``AlterField`` does). Reversed, the index is made again. ``field_after`` is the
    field as the model declares it now, for the migration state.
    """

    def indexes_of_column(model, schema_editor) -> list[str]:
        column = model._meta.get_field(field).column
        declared = {index.name for index in model._meta.indexes}
        return schema_editor._constraint_names(
            model, [column], index=True, unique=False, type_=Index.suffix, exclude=declared
        )

    def drop(apps, schema_editor) -> None:
        model = apps.get_model(app_label, model_name)
        for name in indexes_of_column(model, schema_editor):
            schema_editor.execute(schema_editor._delete_index_sql(model, name))

    def create(apps, schema_editor) -> None:
        model = apps.get_model(app_label, model_name)
        if not indexes_of_column(model, schema_editor):
            schema_editor.execute(schema_editor._create_index_sql(model, fields=[model._meta.get_field(field)]))

    return migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AlterField(model_name=model_name, name=field, field=field_after)],
        database_operations=[migrations.RunPython(drop, create)],
    )
