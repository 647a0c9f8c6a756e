"""With the outbox in PostgreSQL, the fleet rollout state lives there too, shared by the bridge
replicas: exporter reports of one rollout arriving at two replicas at the same moment make one
rollout with one count, and the fleet commit status ends on one final post with the full count,
never an older count after a newer one; the chat line of each step is sent once.

Two bridges run in this process as replicas, each on its own HTTP listener and database
sessions, on one real PostgreSQL database; a fake GitHub enforces the commit-status API and the
fleet chat line reaches a webhook through the shared outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from notifiers import pgschema, rolloutpg
from notifiers.app import Bridge
from notifiers.pgstore import PostgresError, PostgresSettings
from notifiers.rolloutpg import PostgresRolloutStore
from notifiers.rollouts import parse_object
from notifiers.rolloutstore import objects_of
from tests.notifiers import fakes
from tests.notifiers.fakes import FakeDestination, bridge_config, fast_webhook, make_bridge
from tests.pipelines.bridgeharness import TOKEN, podinfo_object, until
from tests.pipelines.githosts import FakeGitHost, FakeGitHub

REV_A = f"main@sha1:{'a' * 40}"
COMMITS = ("b" * 40, "c" * 40, "d" * 40)  # rolled out one after the other
REPO = "https://github.com/acme/podinfo.git"
FLEET = "fluxwatch/fleet/Kustomization/apps/podinfo"
SHARDS = 4
PER_SHARD = 10
CLUSTERS = [f"prod-{i:03d}" for i in range(SHARDS * PER_SHARD)]
STEP = 5  # clusters that apply the new revision between two rounds of reports


def obj(applied: str, wanted: str = "") -> dict[str, Any]:
    status = "progressing" if wanted else "ready"
    return podinfo_object(applied, wanted, status, source_url=REPO)


class Replica:
    """One bridge replica, serving the exporter intake and ``/rollouts`` on loopback."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.url = bridge.url

    async def view(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as http, http.get(self.url + "/rollouts") as resp:
            rows: list[dict[str, Any]] = (await resp.json())["rollouts"]
        return rows


@contextlib.asynccontextmanager
async def two_replicas(
    tmp_path: Path,
    github: FakeGitHost,
    chat: FakeDestination,
    monkeypatch: pytest.MonkeyPatch,
    **rollouts: str,
) -> AsyncIterator[tuple[Replica, Replica]]:
    """Two bridges on one PostgreSQL database (``fakes.OUTBOX_POSTGRES_DSN``): commit statuses
    to ``github``, the fleet rollout line through a ``fleet_rollouts`` route to ``chat``."""
    (tmp_path / "gh").write_text("gh-token")
    (tmp_path / "exporter-token").write_text(TOKEN)
    doc = bridge_config(
        tmp_path / "state",
        {
            "github": {
                "type": "github",
                "base_url": github.url,
                "hosts": ["github.com"],
                "token_file": str(tmp_path / "gh"),
            },
            "releases": fast_webhook(chat.url),
        },
        {
            "group_wait": "0s",
            "routes": [
                {
                    "name": "releases",
                    "matchers": ['source="rollout"'],
                    "destinations": ["releases"],
                    "fleet_rollouts": True,
                }
            ],
        },
        exporters={"token_file": str(tmp_path / "exporter-token")},
        rollouts={"status_interval": "0s", **rollouts},
    )
    bridges: list[Bridge] = []
    try:
        for name in ("replica-a", "replica-b"):
            monkeypatch.setenv("FLUXWATCH_REPLICA_ID", name)
            bridge = make_bridge(doc, listen=("127.0.0.1", 0))
            bridges.append(bridge)
            await bridge.start()
        yield Replica(bridges[0]), Replica(bridges[1])
    finally:
        for bridge in bridges:
            await bridge.stop()


async def post_report(
    http: aiohttp.ClientSession, replica: Replica, shard: int, state: dict[str, dict[str, Any]]
) -> None:
    mine = CLUSTERS[shard * PER_SHARD : (shard + 1) * PER_SHARD]
    doc = {
        "shard": shard,
        "total_shards": SHARDS,
        "synced": True,
        "clusters": [{"cluster": c, "objects": [state[c]]} for c in mine],
    }
    async with http.post(
        replica.url + "/exporter/v1/rollouts",
        json=doc,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as resp:
        assert resp.status == 202, await resp.text()


async def report_everything(
    replicas: Sequence[Replica], state: dict[str, dict[str, Any]], rng: random.Random
) -> None:
    """Every shard reports at once, each to whichever replica the load balancer picks."""
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(
            *(post_report(http, rng.choice(replicas), shard, state) for shard in range(SHARDS))
        )


def applied_count(description: str) -> int:
    found = re.search(r"applied on (\d+)/", description)
    assert found is not None, description
    return int(found.group(1))


async def settled(replicas: Sequence[Replica]) -> bool:
    for r in replicas:
        if not await r.bridge.rollouts.statuses.idle():
            return False
    return True


def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A view row without what depends on the reading replica's clock."""
    return [{k: v for k, v in r.items() if k not in ("age_seconds", "slowest")} for r in rows]


@pytest.fixture
def shared_database(postgres_dsn: str) -> Iterator[str]:
    fakes.OUTBOX_POSTGRES_DSN = postgres_dsn  # bridge_config points every replica at it
    yield postgres_dsn
    fakes.OUTBOX_POSTGRES_DSN = None


def fleet_lines(chat: FakeDestination, commit: str) -> list[str]:
    """The fleet rollout lines of ``commit`` the chat destination applied, once per delivery."""
    return [
        str(e["message"])
        for e in chat.applied_events()
        if e.get("source") == "rollout" and str(e.get("revision", "")).endswith(commit)
    ]


def final_line_delivered(chat: FakeDestination, commit: str) -> bool:
    return any("rolled out to 40/40" in line for line in fleet_lines(chat, commit))


async def test_reports_at_two_replicas_make_one_rollout_and_one_final_status(
    tmp_path: Path,
    shared_database: str,
    destination: FakeDestination,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github = await FakeGitHub(token="gh-token").start()
    rng = random.Random(7)
    try:
        async with two_replicas(tmp_path, github, destination, monkeypatch) as replicas:
            state = {c: obj(REV_A) for c in CLUSTERS}
            views = await roll_out(replicas, state, REV_A, rng)
            for commit in COMMITS:
                # The commit reaches STEP more clusters between two rounds of reports.
                revision = f"main@sha1:{commit}"
                for c in CLUSTERS:
                    state[c] = obj(state[c]["applied"], wanted=revision)
                for done in range(0, len(CLUSTERS) + 1, STEP):
                    for c in CLUSTERS[:done]:
                        state[c] = obj(revision)
                    await report_everything(replicas, state, rng)
                views = await roll_out(replicas, state, revision, rng)
            for commit in COMMITS:
                final = functools.partial(final_line_delivered, destination, commit)
                await until(final, f"the final fleet line of {commit[:7]} delivered")
    finally:
        await github.stop()

    # One fleet-wide state, whichever replica is asked.
    assert comparable(views[0]) == comparable(views[1])
    rows = views[0]
    revisions = [f"main@sha1:{c}" for c in reversed(COMMITS)] + [REV_A]
    assert [(r["revision"], r["state"]) for r in rows] == [
        (revision, "success" if i == 0 else "superseded") for i, revision in enumerate(revisions)
    ]
    assert (rows[0]["applied"], rows[0]["total"]) == (len(CLUSTERS), len(CLUSTERS))

    for commit in COMMITS:
        # The host saw the count only grow, never one status twice in a row, one final post.
        posts = github.statuses(commit)[FLEET]
        counts = [applied_count(p["description"]) for p in posts]
        assert counts == sorted(counts), counts
        shown = [(p["state"], p["description"]) for p in posts]
        assert all(a != b for a, b in itertools.pairwise(shown)), shown
        assert [p["state"] for p in posts].count("success") == 1
        assert shown[-1] == ("success", f"applied on {len(CLUSTERS)}/{len(CLUSTERS)} clusters")

        # Each chat line of the rollout went out once, from one replica or the other.
        lines = fleet_lines(destination, commit)
        assert len(lines) == len(set(lines)), lines
        assert sum("rolled out to 40/40" in line for line in lines) == 1, lines


async def roll_out(
    replicas: Sequence[Replica],
    state: dict[str, dict[str, Any]],
    revision: str,
    rng: random.Random,
) -> list[list[dict[str, Any]]]:
    """Report until both replicas show ``revision`` applied everywhere with nothing left to
    post; the views they show then."""
    await report_everything(replicas, state, rng)

    async def finished() -> list[list[dict[str, Any]]] | None:
        views = [await r.view() for r in replicas]
        ok = all(v and v[0]["revision"] == revision and v[0]["state"] == "success" for v in views)
        return views if ok and await settled(replicas) else None

    views: list[list[dict[str, Any]]] = await until(finished, f"{revision} applied everywhere")
    return views


async def test_a_status_back_to_what_the_host_showed_follows_another_replicas_post(
    tmp_path: Path,
    shared_database: str,
    destination: FakeDestination,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The host shows "1/3"; another replica is posting "2/3" when a cluster falls back and the
    verdict is "1/3" again: that must be posted after the "2/3", not dropped as already shown."""
    commit = COMMITS[0]
    revision = f"main@sha1:{commit}"
    github = await FakeGitHub(token="gh-token").start()
    dsn_file = tmp_path / "claimant.dsn"
    dsn_file.write_text(shared_database)
    other = PostgresRolloutStore(PostgresSettings(dsn_file=dsn_file))  # stands in for a replica

    def queued() -> list[str]:
        with psycopg.connect(shared_database) as conn:
            rows = conn.execute(
                f"SELECT payload FROM {rolloutpg.SCHEMA}.status_queue WHERE context = %s",
                (FLEET,),
            ).fetchall()
        return [json.loads(r[0])["status"]["description"] for r in rows]

    def fleet_posts() -> list[str]:
        return [p["description"] for p in github.statuses(commit).get(FLEET, [])]

    try:
        async with two_replicas(tmp_path, github, destination, monkeypatch) as (first, _second):

            async def report(applied: int, reason: str = "") -> None:
                states = {
                    c: obj(revision) if i < applied else obj(REV_A, wanted=revision)
                    for i, c in enumerate(("c1", "c2", "c3"))
                }
                states["c3"]["reason"] = reason  # news about a cluster that changes no count
                await post_clusters(first, states)

            await post_clusters(first, {c: obj(REV_A) for c in ("c1", "c2", "c3")})
            await report(1)
            await until(lambda: fleet_posts() == ["applied on 1/3 clusters"], "1/3 posted")
            other.open()
            key = f"status/github/{commit}/{FLEET}"
            # "posting now" (once the replica that posted "1/3" has let go of the claim)
            await until(lambda: other.call(lambda conn: other.try_claim(conn, key)), "the claim")
            # It recorded "1/3" as posted (here: the first replica did) and still holds the
            # claim: a plan that finds "1/3" again has nothing to queue.
            await report(1, reason="Progressing")
            await until(lambda: settled([first]), "the first replica idle")
            assert queued() == []
            await report(2)
            await until(lambda: queued() == ["applied on 2/3 clusters"], "2/3 queued")
            await report(1)  # a cluster falls back while "2/3" is being posted
            await until(lambda: queued() == ["applied on 1/3 clusters"], "1/3 queued again")
            other.close()  # the post is done (the stand-in sends nothing): "1/3" follows
            await until(lambda: len(fleet_posts()) == 2, "1/3 posted again")
            assert fleet_posts() == ["applied on 1/3 clusters"] * 2
    finally:
        other.close()
        await github.stop()


async def test_a_paced_chat_line_of_a_replica_that_stops_is_sent_by_the_other(
    tmp_path: Path,
    shared_database: str,
    destination: FakeDestination,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Progress lines are paced (``status_interval``) in the memory of the replica that planned
    them; when it goes away first, the other replica's periodic look at every current rollout
    (each ``prune_interval``) sends the line."""
    commit = COMMITS[0]
    revision = f"main@sha1:{commit}"
    github = await FakeGitHub(token="gh-token").start()
    try:
        async with two_replicas(
            tmp_path, github, destination, monkeypatch, status_interval="2s", prune_interval="0.2s"
        ) as (first, _second):

            async def report(applied: int) -> None:
                states = {
                    c: obj(revision) if i < applied else obj(REV_A, wanted=revision)
                    for i, c in enumerate(("c1", "c2", "c3"))
                }
                await post_clusters(first, states)

            def has_line(count: str) -> bool:
                return any(count in line for line in fleet_lines(destination, commit))

            await post_clusters(first, {c: obj(REV_A) for c in ("c1", "c2", "c3")})
            await report(1)
            await until(lambda: has_line("applied on 1/3"), "the 1/3 line")
            await report(2)  # paced: the first replica holds "2/3" back for 2 s...
            await first.bridge.stop()  # ...and stops before sending it
            await until(lambda: has_line("applied on 2/3"), "the 2/3 line from the other")
    finally:
        await github.stop()


async def post_clusters(replica: Replica, states: dict[str, dict[str, Any]]) -> None:
    doc = {
        "shard": 0,
        "total_shards": 1,
        "synced": True,
        "clusters": [{"cluster": c, "objects": [o]} for c, o in states.items()],
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            replica.url + "/exporter/v1/rollouts",
            json=doc,
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as resp,
    ):
        assert resp.status == 202, await resp.text()


def test_a_claim_is_held_by_one_replica_and_freed_when_it_dies(
    tmp_path: Path, postgres_dsn: str
) -> None:
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(postgres_dsn)
    first = PostgresRolloutStore(PostgresSettings(dsn_file=dsn_file))
    second = PostgresRolloutStore(PostgresSettings(dsn_file=dsn_file))
    first.open()
    second.open()
    try:
        key = f"status/github/{COMMITS[0]}/{FLEET}"
        first_conn, second_conn = first._conn, second._conn  # one session per replica
        assert first_conn is not None
        assert second_conn is not None
        assert first.try_claim(first_conn, key)
        assert not first.try_claim(first_conn, key)  # not twice, even by its holder
        assert not second.try_claim(second_conn, key)
        assert second.try_claim(second_conn, "status/github/other")  # other keys are free
        first.close()  # the replica dies: its session, and its claims, end
        deadline = time.monotonic() + 10  # the server ends the session just after
        while not second.try_claim(second_conn, key):
            assert time.monotonic() < deadline, "the dead replica's claim was never freed"
            time.sleep(0.01)
    finally:
        first.close()
        second.close()


async def test_a_lost_database_session_fails_one_report_and_the_next_reconnects(
    tmp_path: Path, postgres_dsn: str
) -> None:
    dsn_file = tmp_path / "dsn"
    dsn_file.write_text(postgres_dsn)
    store = PostgresRolloutStore(PostgresSettings(dsn_file=dsn_file))
    store.open()
    try:
        first = {"prod-a": [parse_object(obj(REV_A), "prod-a", 1.0, "t")]}
        second = {"prod-b": [parse_object(obj(REV_A), "prod-b", 2.0, "t")]}
        report = functools.partial(store.report, shard=0, total_shards=1, synced=True)
        await report(clusters=first, now=1.0)
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        # the exporter is told no (the bridge answers 503) and sends the report again
        with pytest.raises(psycopg.OperationalError):
            await report(clusters=second, now=2.0)
        await report(clusters=second, now=2.0)
        clusters = await store.call(
            lambda conn: [o.cluster for o in objects_of(conn, ("Kustomization", "apps", "podinfo"))]
        )
        assert sorted(clusters) == ["prod-a", "prod-b"]
    finally:
        store.close()


def test_replicas_starting_together_create_the_rollout_schema_once(postgres_dsn: str) -> None:
    replicas = 4
    found: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(replicas)

    def replica() -> None:
        try:
            with psycopg.connect(postgres_dsn, autocommit=True) as conn:
                barrier.wait()
                pgschema.migrate(conn)  # the outbox's schema beside it, in the same database
                found.append(rolloutpg.migrate(conn))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(found) == [0] + [rolloutpg.SCHEMA_VERSION] * (replicas - 1)
    with psycopg.connect(postgres_dsn) as conn:
        versions = [
            r[0] for r in conn.execute(f"SELECT version FROM {rolloutpg.VERSION_TABLE} ORDER BY 1")
        ]
        outbox_versions = [r[0] for r in conn.execute("SELECT version FROM fluxwatch_schema")]
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (rolloutpg.SCHEMA,),
            )
        }
    assert versions == list(range(1, rolloutpg.SCHEMA_VERSION + 1))
    assert len(outbox_versions) == pgschema.SCHEMA_VERSION  # the two schemas do not collide
    assert set(rolloutpg.TABLES) <= tables


def test_newer_rollout_schema_than_the_bridge_refuses_to_start(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        rolloutpg.migrate(conn)
        conn.execute(
            f"INSERT INTO {rolloutpg.VERSION_TABLE} VALUES (%s)", (rolloutpg.SCHEMA_VERSION + 1,)
        )
        with pytest.raises(PostgresError, match=r"rollout schema is version \d+, newer"):
            rolloutpg.migrate(conn)
