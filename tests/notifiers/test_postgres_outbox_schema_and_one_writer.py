"""The PostgreSQL outbox creates and migrates its schema once, even with replicas starting at
the same moment, lets one bridge write at a time, and explains an unreachable database."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import psycopg
import pytest

from notifiers.pgstore import (
    MIGRATIONS,
    SCHEMA_VERSION,
    PostgresError,
    PostgresSettings,
    PostgresStore,
    migrate,
)


def settings_for(dsn: str, tmp_path: Path) -> PostgresSettings:
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(dsn)
    return PostgresSettings(dsn_file=dsn_file)


def test_replicas_starting_together_migrate_an_empty_database_once(postgres_dsn: str) -> None:
    found: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def replica() -> None:
        try:
            with psycopg.connect(postgres_dsn, autocommit=True) as conn:
                start.wait()
                found.append(migrate(conn))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(found) == [0, SCHEMA_VERSION, SCHEMA_VERSION, SCHEMA_VERSION]
    with psycopg.connect(postgres_dsn) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM fluxwatch_schema ORDER BY 1")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_previous_schema_version_is_migrated_in_place(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE fluxwatch_schema (version INTEGER NOT NULL)")
        conn.execute(MIGRATIONS[0])
        conn.execute("INSERT INTO fluxwatch_schema VALUES (1)")
        conn.execute(
            "INSERT INTO notifications (id, destination, group_key, idempotency_key, status, "
            "created_at, next_attempt_at, total_events, delivery_ids, object_keys, payload) "
            "VALUES (1, 'ci', 'g', 'k', 'dead', 0, 0, 1, '[]', '[]', '[]')"
        )
        assert migrate(conn) == 1
        row = conn.execute("SELECT status, retry_since FROM notifications").fetchone()
    assert row == ("dead", None)  # the old row kept, the new column there


def test_newer_schema_than_the_bridge_refuses_to_start(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        migrate(conn)
        conn.execute("INSERT INTO fluxwatch_schema VALUES (%s)", (SCHEMA_VERSION + 1,))
        with pytest.raises(PostgresError, match="newer than this bridge"):
            migrate(conn)


def test_one_bridge_writes_to_a_database_at_a_time(postgres_dsn: str, tmp_path: Path) -> None:
    first, second = PostgresStore(settings_for(postgres_dsn, tmp_path)), None
    first.open()
    try:
        second = PostgresStore(settings_for(postgres_dsn, tmp_path))
        with pytest.raises(PostgresError, match="another bridge is writing"):
            second.open()
    finally:
        first.close()
    assert second is not None
    second.open()  # the first one's session ended: its lock is free
    second.close()


def test_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    dsn = f"host=127.0.0.1 port={port} user=bridge password=hunter2-secret dbname=x"
    store = PostgresStore(settings_for(dsn, tmp_path))
    with pytest.raises(PostgresError) as caught:
        store.open()
    message = str(caught.value)
    assert "cannot connect to PostgreSQL" in message
    assert "hunter2" not in message
    assert "\n" not in message


def test_missing_dsn_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUXWATCH_TEST_DSN", raising=False)
    with pytest.raises(PostgresError, match="FLUXWATCH_TEST_DSN holds no DSN"):
        PostgresStore(PostgresSettings(dsn_env="FLUXWATCH_TEST_DSN")).open()
