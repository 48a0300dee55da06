"""Hot statements compiled once and run on the driver's cursor, for the per-call service paths.

Running a statement through `Connection.execute` costs ≈ 60–100 µs of SQLAlchemy work on top
of the driver's few µs (cache key lookup, execution context, parameter and result set-up, event
dispatch), which on the checkout path is more than the database's own work. A `Prepared`
statement is compiled once per dialect and parameter shape by SQLAlchemy itself, and then run
with the same SQL text and the same parameter and result conversions SQLAlchemy would apply
(`Compiled._bind_processors`, each result column's type processor), on the connection's own
DBAPI connection, inside its transaction.

It falls back to `Connection.execute` (same SQL, same answer) whenever that path is observable
or needed: no transaction begun yet (SQLAlchemy's autobegin issues the BEGIN), cursor-execute
listeners or echo on the connection (statement counters, logging), or a statement SQLAlchemy
must rewrite per call (expanding IN lists, Python-side defaults computed per call, schema
translation). A constant Python-side default of a column left out is bound like a parameter.
Driver errors are raised as SQLAlchemy's `DBAPIError` subclasses, as `execute` raises them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import TextClause


@dataclass(frozen=True, slots=True)
class Ran:
    """What a statement returned: its rows as tuples, the column keys and the row count."""

    rows: list[tuple[Any, ...]]
    keys: tuple[str, ...]
    rowcount: int

    def first(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def one(self) -> tuple[Any, ...]:
        if len(self.rows) != 1:
            raise (
                exc.NoResultFound("no row")
                if not self.rows
                else exc.MultipleResultsFound("more than one row")
            )
        return self.rows[0]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalars(self) -> list[Any]:
        return [row[0] for row in self.rows]

    def mapping(self) -> dict[str, Any] | None:
        """The first row as a dict by column key, or None."""
        return dict(zip(self.keys, self.rows[0], strict=True)) if self.rows else None

    def mappings(self) -> list[dict[str, Any]]:
        return [dict(zip(self.keys, row, strict=True)) for row in self.rows]


@dataclass(slots=True)
class _Shape:
    """One compilation: SQL text, how to lay out parameters, how to convert results."""

    sql: str
    positional: bool  # parameters go as a sequence (qmark/numeric), else by name (pyformat)
    defaults: dict[str, Any]  # literal values bound in the statement itself
    required: frozenset[str]
    keys: tuple[str, ...]
    result_types: tuple[Any, ...]
    result_processors: list[Callable[[Any], Any] | None] | None = None
    lean: bool = True
    # (parameter name, name in the SQL, bind processor or None) in the order the SQL takes them
    plan: tuple[tuple[str, str, Callable[[Any], Any] | None], ...] = ()


class Prepared:
    """A Core statement built once; `run` and `many` execute it on a connection."""

    __slots__ = ("_seen", "_shapes", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._shapes: dict[tuple[Dialect, tuple[str, ...], bool], _Shape] = {}
        # by the parameter names in the order a caller gives them: callers build their dicts
        # the same way each time, so this finds the shape without sorting the names
        self._seen: dict[tuple[Dialect, tuple[str, ...], bool], _Shape] = {}

    def _shape(self, dialect: Dialect, params: Mapping[str, Any], many: bool) -> _Shape:
        seen = (dialect, tuple(params), many)
        shape = self._seen.get(seen)
        if shape is None:
            key = (dialect, tuple(sorted(params)), many)
            shape = self._shapes.get(key)
            if shape is None:
                shape = self._shapes[key] = self._compile(dialect, key[1], many)
            self._seen[seen] = shape
        return shape

    def _compile(self, dialect: Dialect, names: tuple[str, ...], many: bool) -> _Shape:
        compiled: Any = self.statement.compile(  # type: ignore[attr-defined]
            dialect=dialect, column_keys=list(names), for_executemany=many
        )
        binds = compiled.binds
        # columns with a constant Python-side default that the statement leaves out: SQLAlchemy
        # "prefetches" them per execution; their value never changes, so it is bound here
        prefetch = list(getattr(compiled, "insert_prefetch", None) or ())
        constant = {
            column.key: column.default.arg
            for column in prefetch
            if column.default is not None and column.default.is_scalar and column.key in binds
        }
        lean = not (
            compiled.literal_execute_params
            or compiled.post_compile_params
            or compiled.schema_translate_map
            or len(constant) != len(prefetch)
            or getattr(compiled, "update_prefetch", None)
            or (many and compiled.effective_returning)
        )
        defaults = {
            name: bind.effective_value
            for name, bind in binds.items()
            if not bind.required and bind.callable is None
        }
        defaults.update(constant)
        required = frozenset(name for name, bind in binds.items() if bind.required)
        columns = compiled._result_columns or []
        processors = compiled._bind_processors
        escaped = compiled.escaped_bind_names
        order = tuple(compiled.positiontup) if compiled.positional else tuple(binds)
        return _Shape(
            sql=compiled.string,
            positional=bool(compiled.positional),
            defaults=defaults,
            required=required,
            keys=tuple(c.keyname for c in columns),
            result_types=tuple(c.type for c in columns),
            # a text() statement does not say whether it returns rows: it goes through execute
            lean=lean
            and all(not bind.callable for bind in binds.values())
            and not isinstance(self.statement, TextClause),
            plan=tuple((name, escaped.get(name, name), processors.get(name)) for name in order),
        )

    def run(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Ran:
        params = params or {}
        shape = self._shape(conn.dialect, params, False)
        if not (shape.lean and _lean_ok(conn)):
            return _ran(conn.execute(self.statement, dict(params)), shape)
        cursor = _executed(conn, shape.sql, _bind(shape, params), many=False)
        # only a statement with result columns returns rows (psycopg builds `description`
        # anew on each read, so it is read once per shape, for the result processors)
        rows: list[tuple[Any, ...]] = list(cursor.fetchall()) if shape.keys else []
        if rows:
            processors = shape.result_processors
            if processors is None:
                processors = shape.result_processors = [
                    type_._cached_result_processor(conn.dialect, column[1])
                    for type_, column in zip(shape.result_types, cursor.description, strict=True)
                ]
            if any(processors):
                rows = [
                    tuple(
                        value if p is None or value is None else p(value)
                        for p, value in zip(processors, row, strict=True)
                    )
                    for row in rows
                ]
            else:
                rows = [tuple(row) for row in rows]
        return Ran(rows, shape.keys, cursor.rowcount)

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set (a DBAPI executemany); no rows come back."""
        if not rows:
            return
        if len(rows) == 1:  # one parameter set is a plain execution
            self.run(conn, rows[0])
            return
        shape = self._shape(conn.dialect, rows[0], True)
        if not (shape.lean and _lean_ok(conn)):
            conn.execute(self.statement, [dict(r) for r in rows])
            return
        _executed(conn, shape.sql, [_bind(shape, r) for r in rows], many=True)


_CURSOR = "fenqi.prepared.cursor"


def _executed(conn: Connection, sql: str, bound: Any, *, many: bool) -> Any:
    """The driver's cursor with the statement run on it, its rows not yet read. Driver errors
    come out as SQLAlchemy's, as from `Connection.execute`.

    One cursor per driver connection serves every statement: a statement's rows are read
    before the next one runs, and a new cursor costs more than running a statement on
    PostgreSQL (psycopg copies its adapters into each: ≈ 90 µs of CPU against ≈ 58 µs for a
    primary-key SELECT on a reused one). The cursor lives in the pool's record of that
    connection and is made again if the connection was replaced or after a driver error."""
    fairy = conn.connection
    dbapi = fairy.dbapi_connection
    cursor = fairy.info.get(_CURSOR)
    if cursor is None or cursor.connection is not dbapi:
        cursor = fairy.info[_CURSOR] = dbapi.cursor()  # type: ignore[union-attr]
    try:
        if many:
            cursor.executemany(sql, bound)
        else:
            cursor.execute(sql, bound)
    except BaseException as error:
        _forget(fairy, cursor)
        if isinstance(error, conn.dialect.loaded_dbapi.Error):
            raise _wrapped(conn, sql, bound, error) from error
        raise
    return cursor


def _forget(fairy: Any, cursor: Any) -> None:
    fairy.info.pop(_CURSOR, None)
    with suppress(Exception):  # a broken connection's cursor may refuse to close
        cursor.close()


def _lean_ok(conn: Connection) -> bool:
    """Inside a begun transaction, with nobody listening to or echoing cursor executions."""
    if not conn.in_transaction() or conn._echo:
        return False
    dispatch = conn.dispatch
    return not (dispatch.before_cursor_execute or dispatch.after_cursor_execute)


def _bind(shape: _Shape, params: Mapping[str, Any]) -> Any:
    values = {**shape.defaults, **params} if shape.defaults else params
    if not shape.required <= values.keys():
        missing = shape.required - values.keys()
        raise exc.ArgumentError(f"a value is required for bind parameter {min(missing)!r}")
    if shape.positional:
        return [
            values[name] if process is None else process(values[name])
            for name, _sql_name, process in shape.plan
        ]
    return {
        sql_name: values[name] if process is None else process(values[name])
        for name, sql_name, process in shape.plan
    }


def _ran(result: Any, shape: _Shape) -> Ran:
    rows = [tuple(r) for r in result] if result.returns_rows else []
    keys = tuple(result.keys()) if result.returns_rows else shape.keys
    return Ran(rows, keys, result.rowcount)


def _wrapped(conn: Connection, sql: str, params: Any, error: Exception) -> Exception:
    dialect = conn.dialect
    wrapped: Exception = exc.DBAPIError.instance(
        sql, params, error, dialect.loaded_dbapi.Error, dialect=dialect
    )
    return wrapped


def lean_savepoints(dialect: Dialect) -> None:
    """SAVEPOINT, RELEASE and ROLLBACK TO run on the driver's cursor for this engine's dialect.

    SQLAlchemy emits them through `Connection.execute`, compiling a fresh clause each time
    (≈ 150–250 µs against the driver's ≈ 4 µs on SQLite); a service call under a savepoint (the
    simulator's, a claim in the webhook worker) pays that twice. The Connection still tracks its
    nested transactions and fires its savepoint events (the ledger's caches listen to them);
    only the statement is sent directly, by the same rule as `Prepared` (`_lean_ok`), else as
    before. The names are SQLAlchemy's own (`sa_savepoint_N`)."""
    for method, verb in (
        ("do_savepoint", "SAVEPOINT"),
        ("do_release_savepoint", "RELEASE SAVEPOINT"),
        ("do_rollback_to_savepoint", "ROLLBACK TO SAVEPOINT"),
    ):
        setattr(dialect, method, _lean_savepoint(dialect, method, verb))


def _lean_savepoint(dialect: Dialect, method: str, verb: str) -> Callable[[Connection, str], None]:
    def emit(conn: Connection, name: str) -> None:
        if _lean_ok(conn):
            _executed(conn, f"{verb} {name}", (), many=False)
        else:  # the dialect class's own method, as SQLAlchemy would call it
            getattr(type(dialect), method)(dialect, conn, name)

    return emit
