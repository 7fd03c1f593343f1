"""The scan store: every (fingerprint, suspect) result of a scan in one SQLite file.

A scan writes each suspect's results as soon as they arrive, in one transaction per
suspect, so a scan that is killed loses at most the suspects in flight; run again with
the same store, it skips every pair already done (``retry_errors=True`` redoes the
pairs that ended in an error). SQLite runs in WAL mode, so ``tafa results`` can read
the store while a scan writes to it. Only the scan's driver process writes.

Schema (version :data:`SCHEMA_VERSION`, kept in ``PRAGMA user_version`` and in the
``meta`` table):

``meta(key, value)``
    ``schema_version``, ``created_by`` (the tafa-tf version that created the file).
``runs(run_id, started_at, finished_at, engine, library_version, host, pid)``
    one row per ``scan`` call; ``finished_at`` stays NULL for a run that was killed.
``fingerprints(fp_sha256, name, task, input_shape, output_shape, added_at)``
    the fingerprints scanned against (sha256 of manifest and arrays; shapes as JSON).
``results(fp_sha256, ref, content_sha, status, score, pirated, features, queries,
commit_sha, format, error_type, error, fetch_seconds, load_seconds, verify_seconds,
seconds, load_id, run_id, library_version, finished_at)``
    one row per (fingerprint, suspect ref, content): ``content_sha`` is the Hub commit
    the ref resolved to or a sha256 over the local model files ('' when the suspect
    could not be loaded); ``status`` is ``ok``, ``non_finite``, ``nondeterministic``,
    ``not_applicable`` (the shapes do not fit; ``error`` says why) or ``error``;
    ``pirated`` is 1, 0 or NULL; ``features`` is a JSON object; ``load_id`` is shared
    by the rows of one load of the suspect; ``run_id`` is the run that wrote the row.
    Times are in seconds; timestamps are ISO 8601 UTC.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import socket
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from adapters.errors import AdapterError
from adapters.scan_task import STATUS_ERROR, ScanEntry
from tafa_tf._version import __version__

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    engine TEXT NOT NULL,
    library_version TEXT NOT NULL,
    host TEXT,
    pid INTEGER
);
CREATE TABLE fingerprints (
    fp_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    task TEXT,
    input_shape TEXT,
    output_shape TEXT,
    added_at TEXT NOT NULL
);
CREATE TABLE results (
    fp_sha256 TEXT NOT NULL REFERENCES fingerprints(fp_sha256),
    ref TEXT NOT NULL,
    content_sha TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    score REAL,
    pirated INTEGER,
    features TEXT NOT NULL DEFAULT '{}',
    queries INTEGER NOT NULL DEFAULT 0,
    commit_sha TEXT,
    format TEXT,
    error_type TEXT,
    error TEXT,
    fetch_seconds REAL NOT NULL DEFAULT 0,
    load_seconds REAL NOT NULL DEFAULT 0,
    verify_seconds REAL NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0,
    load_id TEXT NOT NULL,
    run_id INTEGER REFERENCES runs(run_id),
    library_version TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    PRIMARY KEY (fp_sha256, ref, content_sha)
);
CREATE INDEX results_by_ref ON results(ref);
"""

#: The columns of an export, in order (``fingerprint_name`` comes from the fingerprints table).
EXPORT_COLUMNS = (
    "fp_sha256", "fingerprint_name", "ref", "content_sha", "status", "score", "pirated",
    "features", "queries", "commit_sha", "format", "error_type", "error", "fetch_seconds",
    "load_seconds", "verify_seconds", "seconds", "load_id", "run_id", "library_version",
    "finished_at",
)


class StoreError(AdapterError, ValueError):
    """The store file is not a scan store this version can use."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


class ScanStore:
    """A SQLite scan store (created if missing). Use from one thread; close when done.

    Args:
        path: the store file, e.g. ``scans.db``.

    Raises:
        StoreError: the file is not a scan store, or was made by a newer schema.

    Examples:
        >>> with ScanStore("scans.db") as store:  # doctest: +SKIP
        ...     print(len(store.entries()))
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise StoreError(f"The scan store must be a file, not a folder. Received: store={str(path)!r}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            self._open()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise StoreError(
                f"{self.path} is not a tafa scan store (SQLite said: {e}); pass a new file name "
                f"or an existing store. Received: store={str(path)!r}"
            ) from e

    def _open(self) -> None:
        db = self._db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version == 0 and not tables:
            meta = (f"INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');"
                    f"INSERT INTO meta VALUES ('created_by', 'tafa-tf {__version__}');")
            db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}{meta}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
            return
        if version != SCHEMA_VERSION or "results" not in tables:
            raise StoreError(
                f"{self.path} has scan-store schema version {version}, this tafa-tf reads version "
                f"{SCHEMA_VERSION}; upgrade tafa-tf or start a new store. Received: user_version={version}"
            )

    def _transaction(self) -> Any:
        return _Transaction(self._db)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> ScanStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_fingerprints(self, fingerprints: Iterable[tuple[str, str, Any]]) -> None:
        """Record ``(sha256, name, Fingerprint)`` triples (a known sha keeps its first name)."""
        rows = [(sha, name, fp.task, json.dumps(list(fp.input_shape)), json.dumps(list(fp.output_shape)), _now())
                for sha, name, fp in fingerprints]
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO fingerprints VALUES (?, ?, ?, ?, ?, ?)", rows)

    def start_run(self, engine: str) -> int:
        """Record the start of a scan run; returns its run_id."""
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO runs (started_at, engine, library_version, host, pid) VALUES (?, ?, ?, ?, ?)",
                (_now(), engine, __version__, socket.gethostname(), os.getpid()),
            )
        return int(cur.lastrowid)

    def finish_run(self, run_id: int) -> None:
        """Mark a run as finished (a killed run keeps finished_at NULL)."""
        with self._transaction():
            self._db.execute("UPDATE runs SET finished_at=? WHERE run_id=?", (_now(), run_id))

    def pending(
        self, refs: Sequence[str], fp_shas: Sequence[str], *, retry_errors: bool = False
    ) -> dict[str, tuple[str, ...]]:
        """The fingerprints still to check for each ref (refs with nothing left are left out).

        A pair is done when it has a row; an ``error`` row counts as done unless
        ``retry_errors``.
        """
        done: dict[str, set[str]] = {}
        marks = ",".join("?" * len(fp_shas))
        for ref, fp_sha, status in self._db.execute(
            f"SELECT ref, fp_sha256, status FROM results WHERE fp_sha256 IN ({marks})", list(fp_shas)
        ):
            if status != STATUS_ERROR or not retry_errors:
                done.setdefault(ref, set()).add(fp_sha)
        out: dict[str, tuple[str, ...]] = {}
        for ref in refs:
            todo = tuple(s for s in fp_shas if s not in done.get(ref, ()))
            if todo:
                out[ref] = todo
        return out

    def record(self, entries: Sequence[ScanEntry], run_id: int | None) -> None:
        """Write one suspect's entries in one transaction, replacing earlier error rows of the same pairs."""
        finished = _now()
        with self._transaction():
            self._db.executemany(
                "DELETE FROM results WHERE fp_sha256=? AND ref=? AND status=?",
                [(e.fingerprint, e.ref, STATUS_ERROR) for e in entries],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO results VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_row(e, run_id, finished) for e in entries],
            )

    def rows(self, refs: Sequence[str] | None = None, fp_shas: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every result row (optionally only these refs and fingerprints) as a dict of :data:`EXPORT_COLUMNS`."""
        cols = ", ".join(f"f.name AS {c}" if c == "fingerprint_name" else f"r.{c}" for c in EXPORT_COLUMNS)
        sql = f"SELECT {cols} FROM results r JOIN fingerprints f USING (fp_sha256)"
        self._db.row_factory = sqlite3.Row
        try:
            rows = [dict(r) for r in self._db.execute(sql + " ORDER BY r.ref, f.name")]
        finally:
            self._db.row_factory = None
        if refs is not None:
            wanted = set(refs)
            rows = [r for r in rows if r["ref"] in wanted]
        if fp_shas is not None:
            shas = set(fp_shas)
            rows = [r for r in rows if r["fp_sha256"] in shas]
        for r in rows:
            r["features"] = json.loads(r["features"])
            r["pirated"] = None if r["pirated"] is None else bool(r["pirated"])
        return rows

    def entries(self, refs: Sequence[str] | None = None, fp_shas: Sequence[str] | None = None) -> list[ScanEntry]:
        """The stored results as ScanEntry values (see :meth:`rows` for the filters)."""
        return [entry_of(r) for r in self.rows(refs, fp_shas)]

    def runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first."""
        cur = self._db.execute("SELECT * FROM runs ORDER BY run_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _row(e: ScanEntry, run_id: int | None, finished: str) -> tuple[Any, ...]:
    return (
        e.fingerprint, e.ref, e.content_sha, e.status, e.score,
        None if e.pirated is None else int(e.pirated), json.dumps(e.features), e.queries, e.commit_sha,
        e.format, e.error_type, e.error, e.fetch_seconds, e.load_seconds, e.verify_seconds, e.seconds,
        e.load_id, run_id, __version__, finished,
    )


def entry_of(r: dict[str, Any]) -> ScanEntry:
    """A row of :meth:`ScanStore.rows` as a ScanEntry."""
    return ScanEntry(
        ref=r["ref"], status=r["status"], score=r["score"], pirated=r["pirated"], features=r["features"],
        queries=r["queries"], commit_sha=r["commit_sha"], format=r["format"], error_type=r["error_type"],
        error=r["error"], seconds=r["seconds"], fingerprint=r["fp_sha256"], fingerprint_name=r["fingerprint_name"],
        content_sha=r["content_sha"], load_id=r["load_id"], fetch_seconds=r["fetch_seconds"],
        load_seconds=r["load_seconds"], verify_seconds=r["verify_seconds"],
    )


def export_rows(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """Rows of :meth:`ScanStore.rows` as ``"json"`` (a list of objects) or ``"csv"`` text.

    In CSV, ``features`` is a JSON object in one cell and ``pirated`` is true/false/empty.

    Raises:
        ValueError: an unknown format.
    """
    if fmt == "json":
        finite = [{**r, "features": {k: v if math.isfinite(v) else None for k, v in r["features"].items()}}
                  for r in rows]
        return json.dumps(finite, indent=2, allow_nan=False, default=str)
    if fmt != "csv":
        raise ValueError(f"The export format must be 'json' or 'csv'. Received: fmt={fmt!r}")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(EXPORT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        cell = {**r, "features": json.dumps(r["features"], sort_keys=True)}
        cell["pirated"] = "" if r["pirated"] is None else str(r["pirated"]).lower()
        writer.writerow(cell)
    return out.getvalue()
