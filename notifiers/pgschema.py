"""The PostgreSQL outbox's schema: its versions and the one migration path every replica runs.

The schema is created and migrated at start under a transaction-level advisory lock, with the
applied version in ``fluxwatch_schema``: replicas starting at once apply each step once.
"""

from __future__ import annotations

from typing import Any

import psycopg

MIGRATION_LOCK = 0x666C7578_0001  # "flux" + 1: serialises schema changes across replicas
# Held for its whole life by a bridge of the single-writer releases (schema version 2), which
# keeps ids and group windows in memory: replicas must not write beside it.
SINGLE_WRITER_LOCK = 0x666C7578_0002

# Each entry moves the schema one version up; never edit an applied one, append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE events (
        seq BIGINT PRIMARY KEY,
        id TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        source TEXT NOT NULL,
        object_key TEXT NOT NULL,
        decision TEXT NOT NULL,
        body TEXT NOT NULL,
        raw TEXT NOT NULL
    );
    CREATE INDEX events_by_object ON events (object_key, received_at);
    CREATE TABLE deliveries (
        id BIGINT PRIMARY KEY,
        event_seq BIGINT NOT NULL,
        destination TEXT NOT NULL,
        group_key TEXT NOT NULL,
        route TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        due_at DOUBLE PRECISION NOT NULL,
        group_interval DOUBLE PRECISION NOT NULL,
        notification_id BIGINT
    );
    CREATE INDEX deliveries_by_status ON deliveries (status);
    CREATE TABLE notifications (
        id BIGINT PRIMARY KEY,
        destination TEXT NOT NULL,
        group_key TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        last_attempt_at DOUBLE PRECISION,
        last_error TEXT NOT NULL DEFAULT '',
        last_status_code INTEGER,
        delivered_at DOUBLE PRECISION,
        total_events INTEGER NOT NULL,
        delivery_ids TEXT NOT NULL,
        object_keys TEXT NOT NULL,
        payload TEXT NOT NULL,
        clusters TEXT NOT NULL DEFAULT '[]',
        requeued INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX notifications_by_status ON notifications (status, destination);
    CREATE TABLE dedup_state (
        key TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        revision TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        was_bad INTEGER NOT NULL,
        applied_revision TEXT NOT NULL
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
    CREATE TABLE thread_anchors (
        destination TEXT NOT NULL,
        incident TEXT NOT NULL,
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        opened_at DOUBLE PRECISION NOT NULL,
        state TEXT NOT NULL,
        closed INTEGER NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (destination, incident)
    );
    CREATE TABLE groups (
        destination TEXT NOT NULL,
        group_key TEXT NOT NULL,
        last_flush_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (destination, group_key)
    );
    """,
    # 2: a replayed notification's retry budget restarts from here (see maintenance.replay)
    "ALTER TABLE notifications ADD COLUMN retry_since DOUBLE PRECISION;",
    # 3: several replicas on one database (notifiers/sharedoutbox.py). A group's window lives in
    # its row, so events of one group arriving at different replicas become one notification;
    # ids come from sequences; a destination is delivered by the replica holding its lease.
    """
    ALTER TABLE groups ALTER COLUMN last_flush_at DROP NOT NULL;
    ALTER TABLE groups ADD COLUMN due_at DOUBLE PRECISION;
    ALTER TABLE groups ADD COLUMN group_interval DOUBLE PRECISION NOT NULL DEFAULT 0;
    ALTER TABLE groups ADD COLUMN opened_at DOUBLE PRECISION;
    ALTER TABLE groups ADD COLUMN held_object TEXT;
    CREATE INDEX groups_due ON groups (due_at) WHERE due_at IS NOT NULL;
    CREATE INDEX groups_holding ON groups (destination, held_object)
        WHERE held_object IS NOT NULL AND due_at IS NOT NULL;
    CREATE INDEX deliveries_waiting ON deliveries (destination, group_key, id)
        WHERE status = 'pending';
    CREATE INDEX notifications_pending ON notifications (destination, id)
        WHERE status = 'pending';
    CREATE SEQUENCE event_seqs;
    CREATE SEQUENCE delivery_ids;
    CREATE SEQUENCE notification_ids;
    CREATE TABLE destination_order (
        destination TEXT PRIMARY KEY,
        last_notification BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE destination_leases (
        destination TEXT PRIMARY KEY,
        claimed_by TEXT NOT NULL DEFAULT '',
        lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
        breaker_opened_at DOUBLE PRECISION,
        paused_until DOUBLE PRECISION NOT NULL DEFAULT 0
    );
    CREATE TABLE replicas (
        id TEXT PRIMARY KEY,
        started_at DOUBLE PRECISION NOT NULL,
        seen_at DOUBLE PRECISION NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class PostgresError(Exception):
    """The PostgreSQL outbox cannot be used; the message names the cause, never the DSN."""


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; returns the version found before."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS fluxwatch_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM fluxwatch_schema").fetchone()
        found = int(row[0]) if row and row[0] is not None else 0
        if found > SCHEMA_VERSION:
            raise PostgresError(
                f"the outbox schema is version {found}, newer than this bridge's "
                f"{SCHEMA_VERSION}: upgrade the bridge"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            conn.execute(MIGRATIONS[version - 1])
            conn.execute("INSERT INTO fluxwatch_schema (version) VALUES (%s)", (version,))
            if version == 3:
                adopt_rows(conn)
    return found


def adopt_rows(conn: psycopg.Connection[Any]) -> None:
    """Make rows written without the shared bookkeeping usable by replicas: the open window of
    every group with waiting deliveries, and sequences above every id in use. Runs after the
    schema reaches version 3 and after ``fluxwatch outbox migrate --from-sqlite`` copied rows."""
    conn.execute(
        "INSERT INTO groups (destination, group_key, last_flush_at, due_at, group_interval, "
        "opened_at, held_object) SELECT destination, group_key, NULL, min(due_at), "
        "max(group_interval), min(created_at), "
        # a noise-control hold names its object at the end of its key (notifiers/noise.py)
        "CASE WHEN strpos(group_key, '|held ') > 0 "
        "THEN substring(group_key from ' object=(.*)$') END "
        "FROM deliveries WHERE status = 'pending' GROUP BY destination, group_key "
        "ON CONFLICT (destination, group_key) DO UPDATE SET due_at = excluded.due_at, "
        "group_interval = excluded.group_interval, opened_at = excluded.opened_at, "
        "held_object = excluded.held_object"
    )
    conn.execute(
        "SELECT setval('event_seqs', greatest((SELECT coalesce(max(seq), 0) FROM events), "
        "(SELECT coalesce(max(value), 0) FROM meta WHERE key = 'dedup_seq')) + 1, false), "
        "setval('delivery_ids', (SELECT coalesce(max(id), 0) FROM deliveries) + 1, false), "
        "setval('notification_ids', (SELECT coalesce(max(id), 0) FROM notifications) + 1, false)"
    )
    conn.execute(
        "INSERT INTO destination_order (destination, last_notification) "
        "SELECT destination, max(id) FROM notifications GROUP BY destination "
        "ON CONFLICT (destination) DO UPDATE SET last_notification = greatest("
        "destination_order.last_notification, excluded.last_notification)"
    )


def refuse_single_writer(conn: psycopg.Connection[Any]) -> None:
    """Stop when a bridge of a single-writer release still writes to this database (an upgrade
    that started the new bridge before stopping the old one). Replicas hold the lock shared for
    their session, so they never exclude each other, and a single-writer bridge started beside
    them refuses in turn."""
    row = conn.execute("SELECT pg_try_advisory_lock_shared(%s)", (SINGLE_WRITER_LOCK,)).fetchone()
    if not (row and row[0]):
        raise PostgresError(
            "a bridge of an earlier fluxwatch release (one writer per database) still writes "
            "to this PostgreSQL outbox; stop it, then start the new bridges"
        )
