"""Several writes sent as one statement: new rows as Django's ``save()`` would insert them.

A push's hot requests write a handful of rows each: an upload commit a blob (two tables, its
multi-table inheritance), the link of its bytes and the pending link with its transfer record; a
first push a repository, its version 0 and its distribution. Through the ORM that is a round trip
per row plus a savepoint pair per ``save()`` (pulpcore's models and django-lifecycle wrap each in
``atomic``), 22 and 37 statements. Sent as data-modifying CTEs of one statement it is one round
trip, atomic on its own: every part runs, or none does (a unique key that a concurrent push
took first fails the whole statement with ``IntegrityError``).

``new_rows`` takes each column's value from the model's own fields (defaults, ``auto_now``
timestamps, ``pulp_type``, parent links), as Django's insert does, so the rows follow pulpcore's
schema; what the model's ``save()`` overrides and lifecycle hooks would add, the caller writes
itself, and says so.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import NOT_PROVIDED, Model


@dataclass(frozen=True)
class Part:
    """One data-modifying statement of a combined write (no trailing semicolon), its
    positional parameters, and the name later parts may read its ``RETURNING`` rows by."""

    sql: str
    params: Sequence[Any] = field(default_factory=tuple)
    name: str = ""


def quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def new_rows(instance: Model, computed: dict[str, Part] | None = None) -> list[Part]:
    """The INSERTs ``instance.save()`` would run for a new row, parents' tables first, with the
    values Django's insert computes (field defaults, ``auto_now``/``auto_now_add``, parent links
    set to the instance's primary key); none of the model's ``save()`` overrides or hooks.

    ``computed``: a column (by attribute name) whose value the database computes when the
    statement runs, an SQL expression with its parameters."""
    meta = instance._meta
    computed = computed or {}
    parts = []
    for model in [*reversed(meta.get_parent_list()), meta.concrete_model]:
        columns, marks, values = [], [], []
        for model_field in model._meta.local_concrete_fields:
            if (
                model_field is model._meta.auto_field
                and getattr(instance, model_field.attname) is None
            ):
                continue  # a serial key: the database numbers the row
            columns.append(quoted(model_field.column))
            if model_field.attname in computed:
                expression = computed[model_field.attname]
                marks.append(f"({expression.sql})")
                values.extend(expression.params)
                continue
            if getattr(model_field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED:
                raise ValueError(f"{model_field} has a database default: not supported here")
            remote = model_field.remote_field
            if remote is not None and remote.parent_link:
                parent_pk = getattr(instance, model_field.target_field.attname)
                setattr(instance, model_field.attname, parent_pk)
            value = model_field.pre_save(instance, add=True)
            marks.append("%s")
            values.append(model_field.get_db_prep_save(value, connection))
        table = quoted(model._meta.db_table)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(marks)})"
        parts.append(Part(sql, values))
    instance._state.adding = False
    instance._state.db = connection.alias
    return parts


def write_together(parts: Sequence[Part]) -> None:
    """Run ``parts`` as one statement: the last is the main statement, the others its CTEs
    (named by their ``name``, or ``w<index>``). Alone, the statement is its own transaction;
    a caller that expects it may fail (``IntegrityError``) runs it ``recoverable()``."""
    *ctes, last = parts
    if ctes:
        heads = ", ".join(f"{part.name or f'w{i}'} AS ({part.sql})" for i, part in enumerate(ctes))
        sql = f"WITH {heads} {last.sql}"
    else:
        sql = last.sql
    params = [param for part in parts for param in part.params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@contextmanager
def recoverable() -> Iterator[None]:
    """Inside a transaction, a savepoint, so that a statement that fails leaves the transaction
    usable; outside, nothing: a statement is its own transaction (no BEGIN/COMMIT)."""
    if connection.in_atomic_block:
        with transaction.atomic():
            yield
    else:
        yield
