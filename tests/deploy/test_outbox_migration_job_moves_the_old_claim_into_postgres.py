"""deploy/kustomize/migrate-outbox: the Job that moves a single-node bridge's outbox into the
PostgreSQL outbox of the replicas.

It must read the claim the single bridge wrote (the chart's and the overlays' claim name), write
to the database the replicas use (the same Secrets and TLS files as examples/ha.yaml), run the
real `fluxwatch outbox migrate`, and be as locked down as every other pod. Run for real: a single
bridge's outbox with notifications still owed is laid out where the Job mounts the claim, and
the Job's command moves it into a PostgreSQL that admits the bridge's role only over verified
TLS with the client certificate from the mounted Secret.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml

from fluxwatch.cli import build_parser, main
from fluxwatch.config import load_config
from tests.deploy.podfs import container_args, in_pod, lay_out_pod, mounts_of
from tests.deploy.renders import KUSTOMIZE, Manifest, find, kustomize_build, render_example
from tests.deploy.test_every_render_validates_against_schemas import (
    KUBERNETES_VERSIONS,
    validate_builtin,
)
from tests.deploy.test_rendered_policies_least_privilege import SECRET_SHAPES, pod_violations
from tests.deploy.tlspostgres import TlsPostgres, tls_postgres, write_client_files
from tests.notifiers.fakes import (
    FakeDestination,
    Step,
    bridge_config,
    eventually,
    fast_webhook,
    make_bridge,
    parsed_flux_event,
)

JOB = "fluxwatch-outbox-migrate"


@functools.cache
def job_objects() -> tuple[Manifest, ...]:
    return tuple(kustomize_build(KUSTOMIZE / "migrate-outbox"))


def _postgres_section(objects: tuple[Manifest, ...], configmap: str) -> dict[str, str]:
    document = yaml.safe_load(find(objects, "ConfigMap", configmap)["data"]["fluxwatch.yaml"])
    section: dict[str, str] = document["bridge"]["outbox"]["postgres"]
    return section


def test_job_objects_validate() -> None:
    assert {o["kind"] for o in job_objects()} == {"ConfigMap", "Job"}
    for obj in job_objects():
        for version in KUBERNETES_VERSIONS:
            validate_builtin(obj, version)


def test_job_pod_is_locked_down_and_holds_no_secret() -> None:
    assert pod_violations(job_objects()) == []
    for obj in job_objects():
        assert not SECRET_SHAPES.search(repr(obj)), obj["kind"]
    (container,) = find(job_objects(), "Job", JOB)["spec"]["template"]["spec"]["containers"]
    assert "env" not in container


def test_job_reads_the_claim_the_single_bridge_wrote() -> None:
    (claim,) = [o for o in render_example("defaults") if o["kind"] == "PersistentVolumeClaim"]
    (overlay_claim,) = [
        o
        for o in kustomize_build(KUSTOMIZE / "overlays" / "single-cluster")
        if o["kind"] == "PersistentVolumeClaim"
    ]
    assert claim["metadata"]["name"] == overlay_claim["metadata"]["name"]
    args = find(job_objects(), "Job", JOB)["spec"]["template"]["spec"]["containers"][0]["args"]
    source = args[args.index("--from-sqlite") + 1]
    volume = mounts_of(job_objects(), "migrate")[source]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    # The single bridge keeps its outbox where --from-sqlite looks.
    config = find(render_example("defaults"), "ConfigMap", "fluxwatch-config")
    assert yaml.safe_load(config["data"]["fluxwatch.yaml"])["bridge"]["state_dir"] == source


def test_job_writes_to_the_database_of_the_replicas() -> None:
    replicas = render_example("ha")
    ha = _postgres_section(replicas, "fluxwatch-config")
    job = _postgres_section(job_objects(), JOB)
    assert job == {k: v for k, v in ha.items() if k != "lease"}
    ha_mounts = mounts_of(replicas, "bridge")
    job_mounts = mounts_of(job_objects(), "migrate")
    for key, path in job.items():
        if key == "sslmode":
            continue
        mount = str(Path(path).parent)
        assert job_mounts[mount]["secret"] == ha_mounts[mount]["secret"], key


def test_job_arguments_run_the_migrate_command(tmp_path: Path) -> None:
    lay_out_pod(job_objects(), tmp_path, configmap=JOB, container="migrate")
    args = build_parser().parse_args(container_args(job_objects(), "Job", JOB, tmp_path))
    assert args.handler.__name__ == "_migrate"
    loaded = load_config(in_pod(tmp_path, "/etc/fluxwatch/config/fluxwatch.yaml"))
    assert loaded.bridge is not None
    assert loaded.bridge.outbox.postgres is not None
    assert loaded.bridge.outbox.postgres.sslmode == "verify-full"


@pytest.fixture(scope="module")
def tls_db() -> Iterator[TlsPostgres]:
    with tls_postgres() as tls:
        yield tls


async def _single_bridge_owing(state: Path, names: tuple[str, ...]) -> None:
    """A single-node bridge's SQLite outbox in ``state`` with one notification per name still
    owed to a destination that answers 503."""
    down = await FakeDestination(default=Step(503)).start()
    route = {"destinations": ["down"], "group_by": ["..."], "group_wait": "0s"}
    try:
        single = make_bridge(bridge_config(state, {"down": fast_webhook(down.url)}, route))
        await single.start(serve=False)
        try:
            for name in names:
                event = parsed_flux_event(name, cluster="prod-eu-1")
                await single.submit([event])
            await eventually(lambda: len(down.requests) >= len(names))  # stored, and owed
        finally:
            await single.stop()
    finally:
        await down.stop()


async def test_job_moves_the_owed_notifications_over_verified_tls(
    tmp_path: Path, tls_db: TlsPostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    objects = job_objects()
    postgres = lay_out_pod(objects, tmp_path, configmap=JOB, container="migrate")["bridge"][
        "outbox"
    ]["postgres"]
    database = tls_db.new_database()
    in_pod(tmp_path, postgres["dsn_file"]).write_text(tls_db.dsn(database))
    tls_files = [in_pod(tmp_path, postgres[k]) for k in ("sslrootcert", "sslcert", "sslkey")]
    write_client_files(tls_db, *tls_files)
    await _single_bridge_owing(in_pod(tmp_path, "/var/lib/fluxwatch"), ("a", "b", "c"))

    assert main(container_args(objects, "Job", JOB, tmp_path)) == 0
    assert "notifications 3" in capsys.readouterr().out
    with psycopg.connect(tls_db.verified_dsn(database, *tls_files)) as conn:
        rows = conn.execute(
            "SELECT destination, status, count(*) FROM notifications GROUP BY 1, 2"
        ).fetchall()
    assert rows == [("down", "pending", 3)]
    # Run again (a retried Job): refused, nothing copied twice.
    assert main(container_args(objects, "Job", JOB, tmp_path)) == 1
    assert "not empty" in capsys.readouterr().err


def test_the_database_admits_the_bridge_only_with_its_certificate(
    tmp_path: Path, tls_db: TlsPostgres
) -> None:
    """The run above proves the Job's files were used: without them the server says no."""
    database = tls_db.new_database()
    ca = tmp_path / "ca.crt"
    write_client_files(tls_db, ca, tmp_path / "tls.crt", tmp_path / "tls.key")
    for missing in (f"sslmode=verify-full sslrootcert={ca}", "sslmode=disable"):
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"{tls_db.dsn(database)} {missing}").close()
