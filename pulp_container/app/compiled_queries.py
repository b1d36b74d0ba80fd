"""Hot queries compiled to SQL once per process, then only bound and run.

Django compiles a queryset to SQL at every evaluation. On the registry's hot path (the token's
user, the distribution at a name, the blob a HEAD or a mount asks for) that compilation cost
more than running the indexed query itself. A ``CompiledQuery`` keeps the ORM as the one
definition of each query: it builds the queryset once over placeholder values, compiles it,
and afterwards binds the real values into the compiled SQL's parameters and runs it as a raw
query of the same model (fields and annotations by column name, as the ORM would load them).

Only plain equality values may be placeholders (no ``LIKE`` patterns or values the ORM
rewrites): compiling checks that each placeholder reaches the parameters unchanged. A list of
values is one placeholder (kind ``list``) when the queryset tests it with ``AnyOf`` (``= ANY``
of one array parameter), not ``__in`` (one parameter per value).

Each runs as a server-side prepared statement (``CONTAINER_PREPARED_QUERIES``, on by default):
PostgreSQL plans it once per connection, not at every run. Django's psycopg 3 backend binds
parameters on the client, so PostgreSQL planned every query at every execution: 1 ms of the
1.2 ms that the readable-holder search took, 0.4 ms of a user lookup. Prepared: 0.17 ms.
Only these queries are prepared (their cursor binds on the server; Django's own cursors never
prepare). Behind PgBouncer in transaction mode, prepared statements need PgBouncer 1.21 or
newer with ``max_prepared_statements`` set; otherwise turn the setting off.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from threading import Lock
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connections
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.models import Lookup, Model, QuerySet
from django.db.models.query import RawQuerySet
from django.db.models.sql.query import RawQuery

# Placeholder values: text no request can send (a private-use character), and UUIDs no row has.
_TEXT_MARK = "\ue000placeholder-"


def text_placeholder(index: int) -> str:
    return f"{_TEXT_MARK}{index}"


def uuid_placeholder(index: int) -> UUID:
    return UUID(int=(0xC0DE << 64) + index)


def placeholder(kind: type, index: int) -> Any:
    if kind is UUID:
        return uuid_placeholder(index)
    if kind is list:
        return [text_placeholder(index)]
    return text_placeholder(index)


class AnyOf(Lookup):
    """``field = ANY(%s)`` with one array parameter: ``filter(AnyOf(F("digest"), digests))``."""

    lookup_name = "any_of"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [list(value)]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


class CompiledQuery:
    """One query shape: ``build(*placeholders)`` returns the queryset, ``kinds`` says each
    placeholder's type (``str``, ``UUID``, or ``list`` of str with ``AnyOf``)."""

    def __init__(self, build: Callable[..., QuerySet], *kinds: type) -> None:
        self._build = build
        self._kinds = kinds
        self._compiled: tuple[Any, str, list[int | None], list[Any]] | None = None
        self._lock = Lock()

    def _compile(self) -> tuple[Any, str, list[int | None], list[Any]]:
        placeholders = [placeholder(kind, i) for i, kind in enumerate(self._kinds)]
        queryset = self._build(*placeholders)
        sql, params = queryset.query.get_compiler(using=queryset.db).as_sql()
        slots: list[int | None] = []
        for param in params:
            slots.append(placeholders.index(param) if param in placeholders else None)
        if {slot for slot in slots if slot is not None} != set(range(len(placeholders))):
            raise ValueError(f"placeholders do not reach the SQL parameters unchanged: {sql}")
        return queryset.model, sql, slots, list(params)

    def rows(self, *values: Any) -> list[Model]:
        """The model instances the queryset would return for these values."""
        if self._compiled is None:
            with self._lock:
                if self._compiled is None:
                    self._compiled = self._compile()
        model, sql, slots, params = self._compiled
        bound = [
            values[slot] if slot is not None else param
            for slot, param in zip(slots, params, strict=True)
        ]
        query = _PreparedQuery(sql, model.objects.db, bound)
        return list(RawQuerySet(sql, model=model, query=query, using=query.using))

    def first(self, *values: Any) -> Model | None:
        found = self.rows(*values)
        return found[0] if found else None


class CompiledQueries:
    """Compiled queries of one family, by shape (a hashable key naming the variant)."""

    def __init__(
        self,
        build: Callable[[Hashable], tuple[Callable[..., QuerySet], tuple]],
        max_shapes: int | None = None,
    ) -> None:
        self._build = build
        self._by_shape: dict[Hashable, CompiledQuery] = {}
        self._max_shapes = max_shapes

    def __getitem__(self, shape: Hashable) -> CompiledQuery:
        query = self._by_shape.get(shape)
        if query is None:
            if self._max_shapes is not None and len(self._by_shape) >= self._max_shapes:
                self._by_shape.clear()  # bounded: shapes that matter come back at once
            build, kinds = self._build(shape)
            query = self._by_shape.setdefault(shape, CompiledQuery(build, *kinds))
        return query


class _PreparedQuery(RawQuery):
    """A raw query run as a server-side prepared statement (see the module's docstring)."""

    def clone(self, using):
        return _PreparedQuery(self.sql, using, params=self.params)

    def _execute_query(self):
        connection = connections[self.using]
        adapt = connection.ops.adapt_unknown_value
        params = tuple(adapt(value) for value in self.params)
        # Django's cursor: its health check, connection, error wrapping and query logging.
        self.cursor = connection.cursor()
        if settings.CONTAINER_PREPARED_QUERIES:
            database = connection.connection
            if database.prepare_threshold is None:  # Django's: never prepare
                database.prepare_threshold = 0  # prepare at the first run
            logged = connection.queries_logged  # tests, DEBUG
            self.cursor.cursor = (_LoggedCursor if logged else ServerBindingCursor)(database)
        self.cursor.execute(self.sql, params)


class _LoggedCursor(ServerBindingCursor):
    """A server-binding cursor for Django's query log (tests, DEBUG), which reads the SQL from
    ``_query``: psycopg sets it only for a query it does not prepare, so it is set here (the SQL
    with ``$n`` placeholders, without values)."""

    def execute(self, query, params=None, **kwargs):
        super().execute(query, params, **kwargs)
        if self._query is None:
            self._query = self._convert_query(query, params)
        return self
