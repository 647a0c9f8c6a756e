"""The PostgreSQL outbox creates and migrates its schema once, even with replicas starting at
the same moment, carries a single-writer database's waiting work over to the replicas' schema,
and explains an unreachable database."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import psycopg
import pytest

from notifiers.pgschema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SINGLE_WRITER_LOCK,
    PostgresError,
    migrate,
)
from notifiers.pgstore import PostgresSettings, PostgresStore


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


def test_waiting_work_of_a_single_writer_database_is_adopted_by_replicas(
    postgres_dsn: str,
) -> None:
    """Version 2 kept group windows in the writer's memory: after the migration to version 3
    the windows of waiting deliveries are rows, and new ids continue above the old ones."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE fluxwatch_schema (version INTEGER NOT NULL)")
        conn.execute(MIGRATIONS[0])
        conn.execute(MIGRATIONS[1])
        conn.execute("INSERT INTO fluxwatch_schema VALUES (1), (2)")
        conn.execute(
            "INSERT INTO events (seq, id, received_at, source, object_key, decision, body, raw) "
            "VALUES (7, 'e7', 100, 'flux', 'c/K/ns/a', 'new', '{}', '{}')"
        )
        conn.execute(
            "INSERT INTO deliveries (id, event_seq, destination, group_key, route, status, "
            "created_at, due_at, group_interval) VALUES "
            "(11, 7, 'slack', 'g1', 'r', 'pending', 100, 130, 300), "
            "(12, 7, 'slack', 'g1', 'r', 'pending', 101, 130, 300), "
            "(13, 7, 'ci', 'g2', 'r', 'batched', 90, 90, 0)"
        )
        conn.execute(
            "INSERT INTO notifications (id, destination, group_key, idempotency_key, status, "
            "created_at, next_attempt_at, total_events, delivery_ids, object_keys, payload) "
            "VALUES (5, 'ci', 'g2', 'k', 'pending', 90, 90, 1, '[13]', '[]', '[]')"
        )
        assert migrate(conn) == 2
        windows = conn.execute(
            "SELECT destination, group_key, due_at, group_interval, opened_at FROM groups"
        ).fetchall()
        ids = conn.execute(
            "SELECT nextval('event_seqs'), nextval('delivery_ids'), nextval('notification_ids')"
        ).fetchone()
        order = conn.execute("SELECT destination, last_notification FROM destination_order")
        assert order.fetchall() == [("ci", 5)]
    assert windows == [("slack", "g1", 130.0, 300.0, 100.0)]
    assert ids == (8, 14, 6)


def test_replicas_refuse_to_write_beside_a_single_writer_bridge(
    postgres_dsn: str, tmp_path: Path
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as old_bridge:
        old_bridge.execute("SELECT pg_advisory_lock(%s)", (SINGLE_WRITER_LOCK,))
        with pytest.raises(PostgresError, match="earlier fluxwatch release"):
            PostgresStore(settings_for(postgres_dsn, tmp_path)).open()
    replicas = [PostgresStore(settings_for(postgres_dsn, tmp_path)) for _ in range(2)]
    for store in replicas:  # the old bridge stopped: replicas start side by side
        store.open()
    try:
        with psycopg.connect(postgres_dsn, autocommit=True) as old_bridge:
            row = old_bridge.execute(
                "SELECT pg_try_advisory_lock(%s)", (SINGLE_WRITER_LOCK,)
            ).fetchone()
        assert row == (False,)  # and an old bridge started beside them would refuse
    finally:
        for store in replicas:
            store.close()


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
