"""The chart renders with the real Helm v4 engine and passes `helm lint --strict`.

Defaults and every values example under deploy/helm/fluxwatch/examples/ (the ones docs/deploy.md
shows); values the schema or the templates refuse fail with a message naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.deploy.renders import CHART, example_names, example_values, render_chart, render_example

WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error


@pytest.mark.parametrize("example", example_names())
def test_example_renders_workloads(example: str) -> None:
    kinds = {o["kind"] for o in render_example(example)}
    assert "StatefulSet" in kinds or "Deployment" in kinds


@pytest.mark.parametrize("example", example_names())
def test_helm_lint_strict_finds_nothing(example: str) -> None:
    report = helm.lint(CHART, example_values(example) or None, strict=True, namespace="fluxwatch")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= WARNING] == []


@pytest.mark.parametrize("example", example_names())
def test_render_is_deterministic(example: str) -> None:
    assert render_chart(example_values(example)) == list(render_example(example))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"exporter": {"mode": "agent"}}, "/exporter/mode"),
        ({"exporter": {"replicas": 0}}, "/exporter/replicas"),
        ({"exporter": {"perObject": "some"}}, "/exporter/perObject"),
        ({"rbac": {"scope": "everything"}}, "/rbac/scope"),
        ({"bridge": {"secretMounts": [{"name": "slack"}]}}, "existingSecret"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"exporter": {"mode": "hub"}}, "exporter.hub.kubeconfigSecrets"),
        ({"transitions": {"enabled": True}}, "transitions.token.existingSecret"),
        ({"unknownKey": 1}, "unknownKey"),
        ({"bridge": {"replicas": 0}}, "/bridge/replicas"),
        ({"bridge": {"replicas": 2}}, "bridge.replicas > 1 needs bridge.postgres.enabled"),
        ({"bridge": {"postgres": {"lease": "soon"}}}, "/bridge/postgres/lease"),
        ({"bridge": {"postgres": {"clientCert": {"keyKey": ""}}}}, "/bridge/postgres/clientCert"),
    ],
)
def test_bad_values_are_refused_by_key(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message.replace(".", r"\.")):
        render_chart(values)


def test_hub_mode_mounts_every_kubeconfig_secret_in_one_rescanned_directory() -> None:
    objects = render_example("hub")
    (sts,) = [o for o in objects if o["kind"] == "StatefulSet"]
    pod = sts["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (clusters,) = [v for v in pod["volumes"] if v["name"] == "clusters"]
    names = [s["secret"]["name"] for s in clusters["projected"]["sources"]]
    assert names == ["fleet-kubeconfigs-eu", "fleet-kubeconfigs-us"]
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "clusters"]
    # No subPath: Secret updates reach the directory and the exporter's rescan sees them.
    assert "subPath" not in mount
    assert sts["spec"]["replicas"] == 3
    # A hub reads no objects of its own cluster: no RBAC at all.
    assert not {"ClusterRole", "Role"} & {o["kind"] for o in objects}


def test_hub_ingress_exposes_the_intake_paths_only_over_tls() -> None:
    (ingress,) = [o for o in render_example("hub") if o["kind"] == "Ingress"]
    (rule,) = ingress["spec"]["rules"]
    paths = {(p["path"], p["pathType"]) for p in rule["http"]["paths"]}
    assert paths == {("/flux", "Prefix"), ("/alertmanager", "Exact")}
    assert ingress["spec"]["tls"] == [{"hosts": [rule["host"]], "secretName": "fluxwatch-tls"}]
    # The Flux Providers post where the Ingress listens.
    provider = yaml.safe_load((REPO_ROOT / "deploy/flux/notifications/provider.yaml").read_text())
    assert provider["spec"]["address"].startswith(f"https://{rule['host']}/flux/")


def test_packaged_chart_renders_the_same(tmp_path: Path) -> None:
    """What `helm package` publishes (the OCI artifact Flux installs) holds every file the
    templates read: the generated rules and dashboards render from the archive too."""
    with helm.Chart.load(CHART) as chart:
        archive = Path(chart.save(tmp_path))
    assert archive.name == "fluxwatch-0.1.0.tgz"
    values = {"monitoring": {"prometheusRule": {"enabled": True}, "dashboards": {"enabled": True}}}
    from_archive = render_chart(values, chart=archive)
    assert from_archive == render_chart(values)
    assert {"PrometheusRule", "ConfigMap"} <= {o["kind"] for o in from_archive}
