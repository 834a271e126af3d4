"""Read-only queries from async code, without a thread-pool round trip per request.

The API holds one `Reader` (`ApiContext.reader`) and hands it to the query services of
`sigma.store.queries`. The hot reads (the caller's identity on every request, orders, fills,
positions, ledger totals) build SQLAlchemy Core statements once, with a `bindparam` for every
value that changes between requests, and run them through the `Reader`:

- on PostgreSQL, on the event loop itself, with asyncpg: the statement is compiled once (per
  statement object) by SQLAlchemy's asyncpg dialect and run on a small pool of connections
  (asyncpg prepares each statement once per connection; no transaction is opened for a
  read). This skips SQLAlchemy's per-execution work (cache key, execution context, result
  processing), and asyncpg decodes rows in C: a query costs a third of what it does through
  SQLAlchemy and psycopg. asyncpg returns NUMERIC as Decimal and timestamps as aware UTC
  datetimes.
- on SQLite (no async driver here), on the application's read-only engine in at most
  `SQLITE_THREADS` threads (the event loop is shared with the bot in `sigma up`: reads queue
  rather than take every core and the loop's share of the interpreter), where the store's
  column types turn its text and naive timestamps into the same Decimal and aware UTC
  datetime values. `fold` also runs a reduction of the rows there, off the loop.

Bound values are handed to the driver as they are (str, int, date, aware or naive-UTC
datetimes); the store types' bind conversions are not applied on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
import asyncpg
from sqlalchemy import Dialect, Engine, Executable
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.exc import DataError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

log = logging.getLogger(__name__)
T = TypeVar("T")

Rows = Sequence[Sequence[Any]]
"""Rows as tuples (positional: unpack them)."""
POOL_SIZE = 8
"""Connections of the pool. Requests beyond it wait for a free one rather than opening more:
a new PostgreSQL connection costs a process fork, and two cores run no more queries at once
anyway."""
SQLITE_THREADS = 2
"""Threads running the API's reads at once on SQLite."""
COMPILED_CACHE = 512
"""Compiled statements kept (statements built once at import take a few dozen)."""
# Errors after which a connection is not used again.
_BROKEN = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # e.g. terminated by an administrator
    ConnectionError,
    OSError,
)
_DIALECT: Dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
_SETTING = re.compile(r"-c\s*([A-Za-z_.]+)=(\S+)")


def refused_value_errors() -> tuple[type[Exception], ...]:
    """The errors by which the database says a value could not be sent or stored (a NUL
    character, a number out of range), through SQLAlchemy or through asyncpg (the `Reader`
    on PostgreSQL): the request's fault, not the server's."""
    return (DataError, asyncpg.exceptions.DataError, asyncpg.exceptions._base.DataError)


class _Pool:
    """At most `size` connections, opened when first needed and reused."""

    def __init__(self, connect: Callable[[], Any], size: int) -> None:
        self._connect = connect
        self._idle: list[asyncpg.Connection] = []
        self._size = size
        self._busy = 0
        self._slots = asyncio.Semaphore(size)

    async def run(self, sql: str, args: Sequence[Any]) -> Rows:
        """The rows of `sql`; a connection that broke is closed and the read tried once more
        on a fresh one (reads are safe to repeat: the server may have restarted)."""
        async with self._slots:
            self._busy += 1
            try:
                return await self._run(sql, args)
            finally:
                self._busy -= 1

    async def _run(self, sql: str, args: Sequence[Any]) -> Rows:
        for attempt in (1, 2):
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                rows: Rows = await conn.fetch(sql, *args)
            except Exception as exc:
                if not conn.is_closed() and not isinstance(exc, _BROKEN):
                    self._idle.append(conn)  # a bad query: the connection itself is fine
                    raise
                conn.terminate()
                await self.close()  # the others most likely lost their server too
                if attempt == 2:
                    raise
                continue
            except BaseException:
                conn.terminate()  # its state is unknown (e.g. cancelled mid-query)
                raise
            self._idle.append(conn)
            return rows
        raise AssertionError("unreachable")  # pragma: no cover

    async def fill(self) -> None:
        """Open every connection the pool may hold that is not open yet, at once."""
        missing = self._size - self._busy - len(self._idle)
        opened = await asyncio.gather(*(self._connect() for _ in range(missing)))
        self._idle.extend(opened)

    async def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            conn = self._idle.pop()
            try:
                await asyncio.wait_for(conn.close(), 5)
            except (Exception, asyncio.CancelledError):
                conn.terminate()


class Reader:
    """Runs the API's read-only Core statements on the database of `engine_of()` (called at
    the first query, so building the API opens no connection)."""

    def __init__(self, engine_of: Callable[[], Engine], *, pool_size: int = POOL_SIZE) -> None:
        self._engine_of = engine_of
        self.pool_size = pool_size
        self._pool: _Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._compiled: dict[int, tuple[Executable, str, tuple[str, ...], dict[str, Any]]] = {}
        self._threads = anyio.CapacityLimiter(SQLITE_THREADS)

    @property
    def engine(self) -> Engine:
        """The application's (synchronous) engine."""
        return self._engine_of()

    @property
    def is_async(self) -> bool:
        """True on PostgreSQL, where queries run on the event loop."""
        return self.engine.dialect.name == "postgresql"

    async def rows(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Rows:
        """Every row of `statement`, with `params` for its bound parameters."""
        return await self.fold(statement, params, _same)

    async def fold(
        self,
        statement: Executable,
        params: Mapping[str, Any] | None,
        reduce: Callable[[Rows], T],
    ) -> T:
        """`reduce(rows)` of `statement`: on SQLite in the reading thread, so summing many
        rows in Python does not hold up the event loop."""
        if not self.is_async:
            return await anyio.to_thread.run_sync(
                self._sync_fold, statement, params, reduce, limiter=self._threads
            )
        return reduce(await self._async_rows(statement, params))

    async def _async_rows(self, statement: Executable, params: Mapping[str, Any] | None) -> Rows:
        sql, names, defaults = self._sql(statement)
        values = {**defaults, **(params or {})}
        args = [_to_utc(values[name]) for name in names]
        return await self._connections().run(sql, args)

    async def warm(self) -> None:
        """Open the pool's connections now (PostgreSQL), so the first burst of requests after
        a start pays no connection set-up (a server process forked per connection, ~15 ms
        each, which otherwise lands on the p99 of the first second). A database that cannot
        be reached is logged, not raised: the API still starts and `/api/health` says why,
        and the pool opens its connections when the database is back."""
        if not self.is_async:
            return
        try:
            await self._connections().fill()
        except (*_BROKEN, asyncpg.exceptions.PostgresError) as exc:
            log.warning("could not open the API's database connections at start: %r", exc)

    async def first(
        self, statement: Executable, params: Mapping[str, Any] | None = None
    ) -> Sequence[Any] | None:
        """The first row of `statement`, or None."""
        found = await self.rows(statement, params)
        return found[0] if found else None

    def _sql(self, statement: Executable) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        """PostgreSQL text of `statement` (`$1`-style), the names of its parameters in
        order and the values of its literal ones, compiled once per statement object (the
        cache holds the object, so its id stays its own)."""
        cached = self._compiled.get(id(statement))
        if cached is not None and cached[0] is statement:
            return cached[1], cached[2], cached[3]
        assert isinstance(statement, ClauseElement)
        compiled = statement.compile(dialect=_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        sql = str(compiled)
        if "POSTCOMPILE" in sql:  # expanding IN (...) parameters: render per call instead
            raise ValueError("Reader statements cannot use expanding IN parameters")
        names = tuple(compiled.positiontup or ())
        defaults = {k: v for k, v in compiled.params.items() if v is not None}
        if len(self._compiled) >= COMPILED_CACHE:
            del self._compiled[next(iter(self._compiled))]
        self._compiled[id(statement)] = (statement, sql, names, defaults)
        return sql, names, defaults

    def _connections(self) -> _Pool:
        # Connections belong to the event loop that opened them: a new loop (a second test
        # client, a restarted server) gets a pool of its own; the old one's are left to go.
        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:
            url = self.engine.url
            # libpq-style `options=-c name=value` of the URL (e.g. a search_path) as settings.
            options = url.query.get("options", "")
            settings = dict(_SETTING.findall(options if isinstance(options, str) else ""))

            async def connect() -> asyncpg.Connection:
                return await asyncpg.connect(
                    host=url.host,
                    port=url.port,
                    user=url.username,
                    password=url.password,
                    database=url.database,
                    server_settings=settings,
                )

            self._pool = _Pool(connect, self.pool_size)
            self._loop = loop
        return self._pool

    def _sync_fold(
        self,
        statement: Executable,
        params: Mapping[str, Any] | None,
        reduce: Callable[[Rows], T],
    ) -> T:
        with self.engine.connect() as conn:
            return reduce(conn.execute(statement, dict(params or {})).all())

    async def close(self) -> None:
        """Close the pooled connections (call from the loop that used them)."""
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.close()
            self._pool, self._loop = None, None


def _same(rows: Rows) -> Rows:
    return rows


def _to_utc(value: Any) -> Any:
    """A naive datetime is UTC (as everywhere in SIGMA); asyncpg wants it aware."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
