"""Two bridge replicas run from what examples/ha.yaml renders share one outbox, over verified TLS.

Each replica is a real `fluxwatch bridge` process started with the Deployment's arguments, the
rendered fluxwatch.yaml and the Secret files laid out as in its own pod, and
FLUXWATCH_REPLICA_ID set to its pod name as the kubelet would from the fieldRef. The database
admits the bridge's role only over TLS with the client certificate (tests/deploy/tlspostgres.py),
so a replica that did not use the chart's DSN, CA, certificate and key files could not start.
Then: intake on either replica reaches the destination once, the database names both pods, and
when the replica delivering the destination is killed the other takes it over within the chart's
`bridge.postgres.lease`.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from tests.cli.process import Fluxwatch
from tests.deploy.podfs import container_args, in_pod, lay_out_pod, mounts_of
from tests.deploy.renders import example_values, find, render_chart
from tests.deploy.tlspostgres import ROLE, TlsPostgres, tls_postgres, write_client_files
from tests.notifiers.fakes import FakeDestination, Step, eventually, fast_webhook, flux_event
from tests.postgres import postgres_binary

BRIDGE = "fluxwatch-bridge"
PODS = ("fluxwatch-bridge-6d5f8c7b9-k2x7q", "fluxwatch-bridge-6d5f8c7b9-w9zrt")
LEASE = "2s"
TLS_FILES = ("postgres-ca/ca.crt", "postgres-client/tls.crt", "postgres-client/tls.key")


@pytest.fixture(scope="module")
def tls_db() -> Iterator[TlsPostgres]:
    with tls_postgres() as tls:
        yield tls


def _values(sink_url: str) -> dict[str, Any]:
    values = copy.deepcopy(example_values("ha"))
    values["bridge"]["postgres"]["lease"] = LEASE
    values["bridge"]["config"] = {
        "route": {"destinations": ["pipeline"], "group_by": ["..."], "group_wait": "0s"},
        "destinations": {"pipeline": fast_webhook(sink_url)},
    }
    return values


def _pod(objects: list[dict[str, Any]], root: Path, tls: TlsPostgres, database: str) -> list[str]:
    """One pod's files under ``root``; returns the container's arguments."""
    postgres = lay_out_pod(objects, root)["bridge"]["outbox"]["postgres"]
    assert postgres["lease"] == LEASE
    in_pod(root, postgres["dsn_file"]).write_text(tls.dsn(database))
    write_client_files(
        tls, *(in_pod(root, postgres[k]) for k in ("sslrootcert", "sslcert", "sslkey"))
    )
    return container_args(objects, "Deployment", BRIDGE, root)


def _replica_env(objects: list[dict[str, Any]], pod: str) -> dict[str, str]:
    """The container's environment as the kubelet fills it in for ``pod``."""
    (container,) = find(objects, "Deployment", BRIDGE)["spec"]["template"]["spec"]["containers"]
    env = {}
    for var in container["env"]:
        assert var["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        env[var["name"]] = pod
    return env


def _in_database(tls: TlsPostgres, root: Path, database: str, sql: str) -> list[tuple[Any, ...]]:
    """Read as the bridge connects, with the files of one pod."""
    files = [in_pod(root, f"/etc/fluxwatch/secrets/{p}") for p in TLS_FILES]
    with psycopg.connect(tls.verified_dsn(database, *files)) as conn:
        return conn.execute(sql).fetchall()


async def _post(session: aiohttp.ClientSession, url: str, name: str) -> None:
    async with session.post(f"{url}/flux/prod-eu-1", json=flux_event(name)) as response:
        assert response.status == 202, await response.text()


async def _ready(session: aiohttp.ClientSession, url: str) -> bool:
    async with session.get(f"{url}/readyz") as response:
        return response.status == 200


async def _metric(session: aiohttp.ClientSession, url: str, name: str) -> float:
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    match = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_replicas_share_the_outbox_and_take_over_within_the_lease(
    tmp_path: Path, tls_db: TlsPostgres
) -> None:
    sink = await FakeDestination(default=Step(200)).start()
    objects = render_chart(_values(sink.url))
    database = tls_db.new_database()
    roots = [tmp_path / pod for pod in PODS]
    replicas: list[Fluxwatch] = []
    try:
        for pod, root in zip(PODS, roots, strict=True):
            args = _pod(objects, root, tls_db, database)
            replicas.append(
                await Fluxwatch.start(
                    *args, "--listen", "127.0.0.1:0", env=_replica_env(objects, pod)
                )
            )
        urls = [
            "http://127.0.0.1:"
            + (await r.wait_for_line(r"listening on 127\.0\.0\.1:(\d+)")).group(1)
            for r in replicas
        ]
        async with aiohttp.ClientSession() as session:

            async def all_ready() -> bool:
                return all([await _ready(session, url) for url in urls])

            await eventually(all_ready, within=30)
            await _post(session, urls[0], "a")
            await _post(session, urls[1], "b")
            await eventually(
                lambda: sorted(e["name"] for e in sink.applied_events()) == ["a", "b"], within=30
            )

            # docs/bridge.md sizes the database for three connections per replica.
            ((connections,),) = _in_database(
                tls_db,
                roots[0],
                database,
                f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{ROLE}' "
                "AND pid <> pg_backend_pid()",
            )
            assert connections <= 3 * len(PODS)
            rows = _in_database(tls_db, roots[0], database, "SELECT id FROM replicas")
            assert sorted(r[0] for r in rows) == sorted(PODS)
            ((holder,),) = _in_database(
                tls_db,
                roots[0],
                database,
                "SELECT claimed_by FROM destination_leases WHERE destination = 'pipeline'",
            )
            assert holder in PODS

            # The replica delivering the destination dies; the other takes it over.
            dead = PODS.index(holder)
            replicas[dead].proc.kill()
            await replicas[dead].proc.wait()
            survivor = urls[1 - dead]
            await _post(session, survivor, "c")
            await eventually(lambda: "c" in {e["name"] for e in sink.applied_events()}, within=30)
            ((holder_now,),) = _in_database(
                tls_db,
                roots[0],
                database,
                "SELECT claimed_by FROM destination_leases WHERE destination = 'pipeline'",
            )
            assert holder_now == PODS[1 - dead]
            name = "fluxwatch_bridge_outbox_lease_takeovers_total"
            assert await _metric(session, survivor, name) == 1
        assert sink.duplicates == 0
    finally:
        for replica in replicas:
            await replica.kill()
        await sink.stop()


def test_libpq_takes_the_client_key_as_the_secret_volume_gives_it(tls_db: TlsPostgres) -> None:
    """In the pod the key file is owned by root, readable by the pod's group (the Secret
    volume's defaultMode) and read by another user; libpq refuses key files others can read,
    so this is checked with libpq itself (Debian's psql) run as an unprivileged user."""
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the files to root and connect as another user")
    objects = render_chart(example_values("ha"))
    mode = mounts_of(objects, "bridge")["/etc/fluxwatch/secrets/postgres-client"]["secret"][
        "defaultMode"
    ]
    # Not under pytest's tmp_path: the unprivileged user must be able to reach the files.
    with tempfile.TemporaryDirectory(prefix="fluxwatch-secret-") as mounted:
        directory = Path(mounted)
        directory.chmod(0o755)
        files = [directory / name for name in ("ca.crt", "tls.crt", "tls.key")]
        write_client_files(tls_db, *files)
        for path in files:
            shutil.chown(path, "root", "nogroup")
            path.chmod(mode)
        psql = [
            "runuser",
            "-u",
            "nobody",
            "--",
            postgres_binary("psql"),
            tls_db.verified_dsn(tls_db.new_database(), *files),
            "-Atc",
            "SELECT current_user",
        ]
        done = subprocess.run(psql, capture_output=True, text=True, timeout=60, check=False)
        assert (done.returncode, done.stdout.strip()) == (0, "fluxwatch_bridge"), done.stderr
        files[2].chmod(0o444)  # the check is live: a key everyone may read is refused
        done = subprocess.run(psql, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0
        assert "private key file" in done.stderr
