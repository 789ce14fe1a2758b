"""Helpers the risk reads share: epoch seconds from the database, id chunks, rounding."""

from collections.abc import Iterable

import numpy as np
from django.db.models import FloatField, Func

from projects.models import CampaignStatus

DAY = 86_400.0
# Ids per query: far below every database's limit on bound parameters.
CHUNK = 5_000
CLOSED_STATUSES = (CampaignStatus.SUCCEEDED, CampaignStatus.FAILED)


class EpochSeconds(Func):
    """A datetime column as seconds since 1970-01-01 UTC, computed by the database.

    Reading thousands of timestamps this way skips building (and making aware) one Python
    datetime per row, which costs more than the numpy models that use them.
    """

    arity = 1
    output_field = FloatField()

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django keeps SQLite datetimes as UTC text; 2440587.5 is the Julian day of the Unix epoch.
        template = "((julianday(%(expressions)s) - 2440587.5) * 86400.0)"
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_postgresql(self, compiler, connection, **extra_context):
        # date_part gives a double directly; EXTRACT computes a numeric first (PostgreSQL 14+),
        # which is slower (measured in benchmarks/README.md, risk section).
        template = "date_part('epoch', %(expressions)s)"
        return self.as_sql(compiler, connection, template=template, **extra_context)


def _seconds(values: Iterable[float | None]) -> np.ndarray:
    """Return EpochSeconds values as a float array, NULL as NaN."""
    return np.array(list(values), dtype=float)


def _to_minor(value: float) -> int:
    """Round an estimate to whole minor units (forecasts are estimates, never money moved)."""
    return round(float(value))  # to the nearest, halves to even as numpy's rint


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _unique_ids(ids: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(int(i) for i in ids))
