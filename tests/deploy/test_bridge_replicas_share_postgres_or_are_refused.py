"""Several bridge replicas: only on PostgreSQL, and then laid out to survive a node or a zone.

The SQLite outbox on a volume has one writer, so more than one replica without PostgreSQL is
refused when the chart renders. With PostgreSQL (examples/ha.yaml) the replicas roll without a
gap, are spread over nodes and zones, keep one up through drains, are named in the database by
their pod name, are all behind the one Service, and read the connection string and TLS files
from mounted Secrets only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.deploy.podfs import lay_out_pod, mounts_of
from tests.deploy.renders import Manifest, find, render_chart, render_example

BRIDGE = "fluxwatch-bridge"
POSTGRES = {
    "enabled": True,
    "dsn": {"existingSecret": "fluxwatch-outbox-dsn"},
}


def _bridge_pod(objects: tuple[Manifest, ...] | list[Manifest]) -> dict[str, Any]:
    pod: dict[str, Any] = find(objects, "Deployment", BRIDGE)["spec"]["template"]
    return pod


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("replicas", [2, 3])
def test_several_replicas_on_sqlite_are_refused_at_render(replicas: int) -> None:
    with pytest.raises(helm.HelmError, match=r"bridge\.replicas > 1 needs bridge\.postgres"):
        render_chart({"bridge": {"replicas": replicas}})


@pytest.mark.parametrize("replicas", [2, 3])
def test_several_replicas_on_postgres_render(replicas: int) -> None:
    objects = render_chart({"bridge": {"replicas": replicas, "postgres": POSTGRES}})
    assert find(objects, "Deployment", BRIDGE)["spec"]["replicas"] == replicas


def test_one_sqlite_replica_keeps_its_volume_and_recreate() -> None:
    deployment = find(render_example("defaults"), "Deployment", BRIDGE)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "PersistentVolumeClaim" in {o["kind"] for o in render_example("defaults")}


def test_ha_replicas_roll_without_a_gap_and_need_no_claim() -> None:
    objects = render_example("ha")
    deployment = find(objects, "Deployment", BRIDGE)
    assert deployment["spec"]["replicas"] == 2
    # A new replica joins before an old one leaves: intake and delivery never stop.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert "PersistentVolumeClaim" not in {o["kind"] for o in objects}
    assert "emptyDir" in mounts_of(objects, "bridge")["/var/lib/fluxwatch"]


def test_a_disruption_budget_keeps_one_replica_through_drains() -> None:
    objects = render_example("ha")
    budget = find(objects, "PodDisruptionBudget", BRIDGE)
    assert budget["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in budget["spec"]
    pod_labels = _bridge_pod(objects)["metadata"]["labels"]
    assert _selects(budget["spec"]["selector"]["matchLabels"], pod_labels)
    # Only the bridge's pods: the exporter has its own budget.
    assert budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "bridge"


@pytest.mark.parametrize("example", ["defaults", "postgres"])
def test_one_replica_gets_no_budget_that_would_block_every_drain(example: str) -> None:
    names = {
        o["metadata"]["name"] for o in render_example(example) if o["kind"] == "PodDisruptionBudget"
    }
    assert BRIDGE not in names


def test_replicas_spread_over_nodes_always_and_zones_when_possible() -> None:
    objects = render_example("ha")
    pod = _bridge_pod(objects)
    spread = {c["topologyKey"]: c for c in pod["spec"]["topologySpreadConstraints"]}
    assert {k: c["whenUnsatisfiable"] for k, c in spread.items()} == {
        "kubernetes.io/hostname": "DoNotSchedule",
        "topology.kubernetes.io/zone": "ScheduleAnyway",
    }
    for constraint in spread.values():
        assert constraint["maxSkew"] == 1
        assert _selects(constraint["labelSelector"]["matchLabels"], pod["metadata"]["labels"])


def test_own_spread_constraints_replace_the_default() -> None:
    own = [
        {
            "maxSkew": 2,
            "topologyKey": "example.com/rack",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "bridge"}},
        }
    ]
    values = {"bridge": {"replicas": 2, "postgres": POSTGRES, "topologySpreadConstraints": own}}
    pod = _bridge_pod(render_chart(values))
    assert pod["spec"]["topologySpreadConstraints"] == own


def test_one_replica_is_not_spread() -> None:
    assert "topologySpreadConstraints" not in _bridge_pod(render_example("postgres"))["spec"]


def test_each_replica_is_named_by_its_pod() -> None:
    (container,) = _bridge_pod(render_example("ha"))["spec"]["containers"]
    assert container["env"] == [
        {
            "name": "FLUXWATCH_REPLICA_ID",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
        }
    ]
    (sqlite,) = _bridge_pod(render_example("defaults"))["spec"]["containers"]
    assert "env" not in sqlite


def test_one_service_in_front_of_every_ready_replica() -> None:
    objects = render_example("ha")
    service = find(objects, "Service", BRIDGE)
    pod = _bridge_pod(objects)
    assert _selects(service["spec"]["selector"], pod["metadata"]["labels"])
    # No pod-specific label in the selector: intake reaches any ready replica.
    assert "statefulset.kubernetes.io/pod-name" not in service["spec"]["selector"]
    (container,) = pod["spec"]["containers"]
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_dsn_and_tls_files_come_from_mounted_secrets_only(tmp_path: Path) -> None:
    objects = render_example("ha")
    config = find(objects, "ConfigMap", "fluxwatch-config")
    document = yaml.safe_load(config["data"]["fluxwatch.yaml"])
    postgres = document["bridge"]["outbox"]["postgres"]
    assert "dsn_env" not in postgres
    mounts = mounts_of(objects, "bridge")
    secrets = {
        "dsn_file": "fluxwatch-outbox-dsn",
        "sslrootcert": "fluxwatch-db-ca",
        "sslcert": "fluxwatch-db-client",
        "sslkey": "fluxwatch-db-client",
    }
    for key, secret in secrets.items():
        mount = str(Path(postgres[key]).parent)
        assert mounts[mount]["secret"]["secretName"] == secret, key
        # Owned by root, readable by the pod's group only: libpq accepts such a key file.
        assert mounts[mount]["secret"]["defaultMode"] == 0o440, key
    assert postgres["sslmode"] == "verify-full"
    (container,) = _bridge_pod(objects)["spec"]["containers"]
    assert [e["name"] for e in container["env"]] == ["FLUXWATCH_REPLICA_ID"]
    # Every file the config names is on a Secret volume (lay_out_pod checks each one).
    lay_out_pod(render_example("ha"), tmp_path)


def test_client_certificate_keys_follow_the_values() -> None:
    client = {"existingSecret": "db-client", "certKey": "client.pem", "keyKey": "client.key"}
    values = {"bridge": {"postgres": {**POSTGRES, "clientCert": client}}}
    document = yaml.safe_load(
        find(render_chart(values), "ConfigMap", "fluxwatch-config")["data"]["fluxwatch.yaml"]
    )
    postgres = document["bridge"]["outbox"]["postgres"]
    assert postgres["sslcert"] == "/etc/fluxwatch/secrets/postgres-client/client.pem"
    assert postgres["sslkey"] == "/etc/fluxwatch/secrets/postgres-client/client.key"


@pytest.mark.parametrize(("lease", "rendered"), [("", None), ("30s", "30s")])
def test_lease_reaches_the_bridge_config(lease: str, rendered: str | None) -> None:
    values = {"bridge": {"postgres": {**POSTGRES, "lease": lease}}}
    document = yaml.safe_load(
        find(render_chart(values), "ConfigMap", "fluxwatch-config")["data"]["fluxwatch.yaml"]
    )
    assert document["bridge"]["outbox"]["postgres"].get("lease") == rendered
