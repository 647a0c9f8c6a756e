"""What the chart hands the containers is accepted by fluxwatch itself.

For every render the pod's files are laid out in a temporary directory (the ConfigMap where it
is mounted, a stand-in for each mounted Secret file the config names), then the container's
arguments go through the real CLI parser and the real config loaders; each StatefulSet pod's host
name gives the shard of its ordinal.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.kube.fleet import plan_shards
from fluxwatch.cli import build_parser
from fluxwatch.commands.exporter import settings_from_args
from fluxwatch.config import load_config
from tests.deploy.podfs import container_args, in_pod, lay_out_pod, mounts_of
from tests.deploy.renders import example_names, find, render_example


@pytest.mark.parametrize("example", example_names())
def test_rendered_config_loads_with_the_real_loader(example: str, tmp_path: Path) -> None:
    objects = render_example(example)
    document = lay_out_pod(objects, tmp_path)
    loaded = load_config(in_pod(tmp_path, "/etc/fluxwatch/config/fluxwatch.yaml"))
    if any(o["kind"] == "Deployment" for o in objects):
        assert loaded.bridge is not None
        state = document["bridge"]["state_dir"]
        mounts = mounts_of(objects, "bridge")
        assert state in mounts
        assert "persistentVolumeClaim" in mounts[state] or "emptyDir" in mounts[state]


@pytest.mark.parametrize("example", example_names())
def test_each_exporter_pod_takes_the_shard_of_its_ordinal(example: str, tmp_path: Path) -> None:
    objects = render_example(example)
    lay_out_pod(objects, tmp_path)
    sts = find(objects, "StatefulSet", "fluxwatch-exporter")
    args = build_parser().parse_args(
        container_args(objects, "StatefulSet", "fluxwatch-exporter", tmp_path)
    )
    settings = settings_from_args(args)
    replicas = sts["spec"]["replicas"]
    assert settings.total_shards == replicas
    static = 0 if settings.kubeconfig_dir else 1
    for ordinal in range(replicas):
        # A StatefulSet pod's host name is "<statefulset name>-<ordinal>".
        plan = plan_shards(settings, static, f"{sts['metadata']['name']}-{ordinal}")
        assert plan.shard == ordinal
    if settings.kubeconfig_dir:
        in_pod = "/" + str(Path(settings.kubeconfig_dir).relative_to(tmp_path))
        assert "projected" in mounts_of(objects, "exporter")[in_pod]
    else:
        assert settings.in_cluster


def _with_bridge() -> list[str]:
    return [n for n in example_names() if any(o["kind"] == "Deployment" for o in render_example(n))]


@pytest.mark.parametrize("example", _with_bridge())
def test_bridge_arguments_parse(example: str, tmp_path: Path) -> None:
    objects = render_example(example)
    args = build_parser().parse_args(
        container_args(objects, "Deployment", "fluxwatch-bridge", tmp_path)
    )
    assert Path(args.config) == in_pod(tmp_path, "/etc/fluxwatch/config/fluxwatch.yaml")


def test_tenant_exporter_watches_its_namespace_only(tmp_path: Path) -> None:
    objects = render_example("tenant")
    lay_out_pod(objects, tmp_path)
    args = build_parser().parse_args(
        container_args(objects, "StatefulSet", "fluxwatch-exporter", tmp_path)
    )
    assert settings_from_args(args).namespace == "team-a"


def test_postgres_outbox_needs_no_claim_and_reads_the_dsn_from_its_secret(tmp_path: Path) -> None:
    objects = render_example("postgres")
    assert "PersistentVolumeClaim" not in {o["kind"] for o in objects}
    document = lay_out_pod(objects, tmp_path)
    postgres = document["bridge"]["outbox"]["postgres"]
    assert postgres["sslmode"] == "verify-full"
    mounts = mounts_of(objects, "bridge")
    assert (
        mounts["/etc/fluxwatch/secrets/postgres"]["secret"]["secretName"] == "fluxwatch-outbox-dsn"
    )
    assert postgres["dsn_file"].startswith("/etc/fluxwatch/secrets/postgres/")
    assert mounts["/etc/fluxwatch/secrets/postgres-ca"]["secret"]["secretName"] == "fluxwatch-db-ca"
    assert postgres["sslrootcert"] == "/etc/fluxwatch/secrets/postgres-ca/ca.crt"
    loaded = load_config(in_pod(tmp_path, "/etc/fluxwatch/config/fluxwatch.yaml"))
    assert loaded.bridge is not None
