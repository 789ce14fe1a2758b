"""Small database helpers shared by the write paths."""

from django.db import IntegrityError, models, transaction


def create_unless_taken(model: type[models.Model], **fields) -> models.Model | None:
    """Insert one row and return it, or return None if a unique constraint already holds it.

    Inside a transaction the INSERT runs in a savepoint, since on PostgreSQL a failed statement
    spoils the whole transaction. Outside one, a single INSERT is atomic by itself: wrapping it
    in BEGIN / COMMIT (what ``transaction.atomic()`` would do) costs two more round trips to the
    database on every pledge, for nothing.
    """
    try:
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():
                return model.objects.create(**fields)
        return model.objects.create(**fields)
    except IntegrityError:
        return None
