"""Plans: database work as a few round trips, defined once in SQLAlchemy Core.

Most statements of a booking need nothing from the ones before them; only a few answers
(which orders are new, the positions as they stand) decide what is written next. A *plan* is
a generator that yields one round trip at a time, a list of `Batch`es, and receives each
batch's returned rows. It holds no connection, so the same plan runs

* on psycopg's asyncio connection (`PgPipeline.run`): each round trip is a single network
  exchange, however many statements and parameter sets it holds (pipeline mode; a last one
  that commits is a single message of statements prepared on the server);
* on the `sqlite3` connection under a SQLAlchemy one (`SqlitePlans.run`), one statement
  after another, in the caller's transaction.

Both compile each statement once per set of parameter names and bind with the type
processing SQLAlchemy applies (exact decimals, UTC times) and the columns' Python-side
defaults, so the rows written and read back are those SQLAlchemy would give.

A round trip whose batches are all empty costs nothing on either.
"""

from __future__ import annotations

import functools
import itertools
import re
import weakref
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from psycopg import AsyncConnection, pq
from psycopg import errors as pg_errors
from psycopg.adapt import Transformer
from sqlalchemy import Connection, Delete, Dialect, Insert, Select, Update
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.dml import ValuesBase
from sqlalchemy.sql.schema import Column
from sqlalchemy.types import TypeDecorator

T = TypeVar("T")
Statement = Insert | Update | Delete | Select[Any]
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Batch:
    """`statement` run once per parameter set (all with the same names); with `returning`,
    the rows of all of them come back in order (an insert that did nothing returns no row)."""

    statement: Statement
    params: Sequence[Mapping[str, Any]]
    returning: bool = False


RoundTrip = list[Batch]
Plan = Generator[RoundTrip, list[Rows], T]
"""Yields round trips, receives one list of rows per batch, returns the plan's result."""


class _Compiled:
    """Statements compiled once per set of parameter names, for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._prepared: dict[tuple[Statement, tuple[str, ...]], _Prepared] = {}

    def _prepare(self, batch: Batch) -> _Prepared:
        keys = tuple(sorted(batch.params[0]))
        prepared = self._prepared.get((batch.statement, keys))
        if prepared is None:
            prepared = _Prepared(batch.statement, keys, self.dialect)
            self._prepared[(batch.statement, keys)] = prepared
        return prepared


class SqlitePlans(_Compiled):
    """Runs plans on the `sqlite3` connection under a SQLAlchemy one, skipping SQLAlchemy's
    per-statement execution layers (about 60 µs a statement, where SQLite itself takes a
    few): the worker's bookings in the embedded default."""

    def __init__(self) -> None:
        super().__init__(sqlite.dialect(paramstyle="named"))

    def run(self, conn: Connection, plan: Plan[T]) -> T:
        """Run `plan` inside `conn`'s transaction."""
        raw = conn.connection.driver_connection
        assert raw is not None  # a connection in use
        cursor = raw.cursor()
        try:
            trip = next(plan)
            while True:
                trip = plan.send([self._run_batch(cursor, batch) for batch in trip])
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            cursor.close()

    def _run_batch(self, cursor: Any, batch: Batch) -> Rows:
        if not batch.params:
            return []
        prepared = self._prepare(batch)
        if not batch.returning:
            cursor.executemany(prepared.sql, [prepared.bind(p) for p in batch.params])
            return []
        rows: Rows = []
        for params in batch.params:
            cursor.execute(prepared.sql, prepared.bind(params))
            rows.extend(prepared.row(raw) for raw in cursor.fetchall())
        return rows


class PgPipeline(_Compiled):
    """Runs plans on a psycopg `AsyncConnection`, one network exchange per round trip."""

    def __init__(self, dialect: Dialect) -> None:
        super().__init__(dialect)
        self._on_server: weakref.WeakKeyDictionary[AsyncConnection[Any], set[str]] = (
            weakref.WeakKeyDictionary()
        )
        """Names of the statements prepared on each connection."""

    async def run(self, conn: AsyncConnection[Any], plan: Plan[T], *, commit: bool = False) -> T:
        """Run `plan` on `conn` (inside the caller's transaction); with `commit`, commit the
        transaction afterwards.

        With `commit`, the plan's last round trip, when it only writes (no answer of it is
        needed to know the plan is done), goes out as one message with the COMMIT (see
        `_commit_with`): one network exchange fewer, and under load every exchange costs two
        process wake-ups."""
        try:
            trip = next(plan)
            while True:
                if commit and not any(batch.returning for batch in trip):
                    empty: list[Rows] = [[] for _ in trip]
                    try:
                        after = plan.send(empty)
                    except StopIteration:
                        await self._commit_with(conn, trip)
                        raise
                    await self._exchange(conn, trip)
                    trip = after
                    continue
                trip = plan.send(await self._exchange(conn, trip))
        except StopIteration as done:
            if commit and conn.info.transaction_status != pq.TransactionStatus.IDLE:
                await conn.commit()
            result: T = done.value
            return result

    async def _commit_with(self, conn: AsyncConnection[Any], trip: RoundTrip) -> None:
        """Write `trip` and commit, in one message: one query string of `EXECUTE`s of
        statements prepared on the server, their values inlined as the literals PostgreSQL
        would parse the parameters into (psycopg's quoting), which the server runs as one
        transaction.

        In pipeline mode each statement would leave in a packet of its own, the server
        running each as it arrives: the commit then waits for the worker to be scheduled
        between statements, which under load took milliseconds for a booking's five. Plain
        statements with inlined values would be parsed and planned on every booking; the
        prepared ones are planned once per connection (the `PREPARE`s of those it lacks
        lead the string: they outlive a transaction that fails after them).

        Opened by an earlier exchange, the transaction is committed by a COMMIT at the end
        of the string; if this is its first statement, no BEGIN is sent (autocommit for this
        exchange): a multi-statement query is a transaction of its own."""
        known = self._on_server.setdefault(conn, set())
        fresh: list[_ServerStatement] = []  # to be prepared on this connection
        execute: list[bytes] = []
        literal = Transformer(conn).as_literal
        for batch in trip:
            if not batch.params:
                continue
            prepared = self._prepare(batch)
            statement = prepared.server
            if statement.name not in known and statement not in fresh:
                fresh.append(statement)
            for params in batch.params:
                execute.append(statement.execute(prepared.bind(params), literal))
        in_transaction = conn.info.transaction_status != pq.TransactionStatus.IDLE
        parts = [
            *(s.declaration for s in fresh),
            *execute,
            *([b"COMMIT"] if in_transaction else []),
        ]
        if not parts:
            return
        if not in_transaction:
            await conn.set_autocommit(True)
        try:
            await conn.execute(b";\n".join(parts), prepare=False)  # several: simple protocol
        except (pg_errors.DuplicatePreparedStatement, pg_errors.InvalidSqlStatementName):
            # What this connection holds is not what `known` says: start again on a new one.
            del self._on_server[conn]
            await conn.close()
            raise
        finally:
            # A lost or given-up connection is discarded; on any other, the declarations
            # (they lead the string) ran, whatever failed after them.
            if not conn.closed:
                known.update(s.name for s in fresh)
                if not in_transaction:
                    await conn.set_autocommit(False)

    async def _exchange(self, conn: AsyncConnection[Any], trip: RoundTrip) -> list[Rows]:
        sent = [(batch, self._prepare(batch)) for batch in trip if batch.params]
        if not sent:
            return [[] for _ in trip]
        # Leaving the pipeline block sends one Sync and reads every result back.
        reading: list[tuple[Batch, _Prepared, list[Any]]] = []
        async with conn.pipeline():
            for batch, prepared in sent:
                params = [prepared.bind(p) for p in batch.params]
                if not batch.returning:
                    await conn.cursor().executemany(prepared.sql, params)
                    continue
                # A cursor per parameter set: `executemany(returning=True)` would wait for
                # its rows there and then, a round trip of its own.
                cursors = []
                for one in params:
                    cursor = conn.cursor()
                    await cursor.execute(prepared.sql, one)
                    cursors.append(cursor)
                reading.append((batch, prepared, cursors))
        answers = {
            id(batch): [prepared.row(raw) for c in cursors for raw in await c.fetchall()]
            for batch, prepared, cursors in reading
        }
        return [answers.get(id(batch), []) for batch in trip]


_PLACEHOLDER = re.compile(rb"%\((\w+)\)s|%%")
_names = itertools.count(1)


class _ServerStatement:
    """A compiled statement as a statement prepared on the server: its `PREPARE` and how to
    `EXECUTE` it with a parameter set's values inlined."""

    def __init__(self, sql: str) -> None:
        self.name = f"sigma_plan_{next(_names)}"
        order: list[str] = []

        def number(match: re.Match[bytes]) -> bytes:
            if match.group(1) is None:
                return b"%"
            name = match.group(1).decode()
            if name not in order:
                order.append(name)
            return b"$%d" % (order.index(name) + 1)

        body = _PLACEHOLDER.sub(number, sql.encode())
        self.declaration = b"PREPARE %s AS %s" % (self.name.encode(), body)
        self._order = order
        self._call = self.name.encode()

    def execute(self, params: Mapping[str, Any], literal: Callable[[Any], bytes]) -> bytes:
        """`EXECUTE` with the driver's values of `params` inlined."""
        if not self._order:
            return b"EXECUTE " + self._call
        values = b", ".join(literal(params[name]) for name in self._order)
        return b"EXECUTE %s(%s)" % (self._call, values)


class _Prepared:
    """One statement compiled for the dialect, with how to bind each parameter and how to
    read each returned column."""

    def __init__(self, statement: Statement, keys: tuple[str, ...], dialect: Dialect) -> None:
        is_dml = isinstance(statement, ValuesBase)
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if is_dml else None)
        self.sql = compiled.string
        defaults: dict[str, Callable[[], Any]] = {}
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            defaults[column.key] = _default_of(column, compiled.isupdate)
        self._binds: list[tuple[str, Callable[[Any], Any] | None, Callable[[], Any] | None]] = []
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            fallback = defaults.get(name)
            if fallback is None and not bind.required and name not in keys:
                fallback = _constant(bind.value)
            self._binds.append((name, processor, fallback))
        self._readers = [
            _reader(column.type, dialect) for column in getattr(statement, "exported_columns", ())
        ]

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The driver's parameters for one parameter set."""
        out = {}
        for name, processor, fallback in self._binds:
            if name in params:
                value = params[name]
            elif fallback is not None:
                value = fallback()
            else:
                raise ValueError(f"no value for parameter {name!r} of {self.sql[:60]!r}…")
            out[name] = processor(value) if processor is not None else value
        return out

    @functools.cached_property
    def server(self) -> _ServerStatement:
        """The statement as one prepared on a PostgreSQL server (`PgPipeline._commit_with`)."""
        return _ServerStatement(self.sql)

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        """One returned row with the columns' result processing."""
        return tuple(
            read(value) if read is not None else value
            for read, value in zip(self._readers, raw, strict=True)
        )


def _default_of(column: Column[Any], update: bool) -> Callable[[], Any]:
    default = column.onupdate if update else column.default
    if default is None or not (default.is_scalar or default.is_callable):
        raise ValueError(f"column {column} has a default this pipeline cannot evaluate")
    arg = default.arg  # type: ignore[attr-defined]
    if default.is_callable:
        return lambda: arg(None)  # SQLAlchemy wraps a callable default to take a context
    return _constant(arg)


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _reader(type_: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """Result processing for a returned column. psycopg already gives Decimal, datetime,
    str and int, so there only a TypeDecorator's own applies; sqlite3 returns text for
    both, so there the type's whole processing does."""
    if dialect.name != "postgresql":
        processor: Callable[[Any], Any] | None = type_.dialect_impl(dialect).result_processor(
            dialect, None
        )
        return processor
    if isinstance(type_, TypeDecorator):
        decorator = type_
        return lambda value: decorator.process_result_value(value, dialect)
    return None
