"""deploy/flux/: valid Flux objects that really deliver a cluster's events to the bridge.

Every object validates against the real Flux CRDs (after the postBuild substitution Flux would
apply); the kustomizations render; the HelmRelease's values render with the chart. Then the
Provider's wiring is exercised for real: a bridge configured exactly as the chart configures it
receives the example Flux event on the Provider's path, signed with the Provider's key as
notification-controller signs it, and files it under the cluster named in the path.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jsonschema
import pytest
import yaml

from notifiers.app import Bridge
from notifiers.config import config_from_mapping
from tests.conftest import EXAMPLES_DIR, REPO_ROOT, require_tool
from tests.deploy.podfs import in_pod, lay_out_pod
from tests.deploy.renders import example_values, render_chart, render_example
from tests.notifiers.fakes import stored_events
from tests.simulator.test_objects_validate_against_crds import load_schemas, unknown_fields

FLUX_DIR = REPO_ROOT / "deploy" / "flux"
HELM_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


def _sync() -> dict[str, Any]:
    sync: dict[str, Any] = yaml.safe_load((FLUX_DIR / "notifications-sync.yaml").read_text())
    return sync


def _substituted(text: str) -> str:
    """What Flux's postBuild substitution makes of the notifications' manifests."""
    variables: dict[str, str] = _sync()["spec"]["postBuild"]["substitute"]
    return re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], text)


def _flux_objects() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(FLUX_DIR.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue  # kustomize's own file, rendered below
        for doc in yaml.safe_load_all(_substituted(path.read_text())):
            out.append((str(path.relative_to(FLUX_DIR)), doc))
    return out


def _one(kind: str) -> dict[str, Any]:
    (found,) = [doc for _, doc in _flux_objects() if doc["kind"] == kind]
    return found


def test_every_flux_object_validates_against_the_crds(crd_dir: Path) -> None:
    schemas = load_schemas(crd_dir)
    objects = _flux_objects()
    assert {doc["kind"] for _, doc in objects} >= {
        "Provider",
        "Alert",
        "HelmRelease",
        "OCIRepository",
        "Kustomization",
    }
    for where, doc in objects:
        schema = schemas[(doc["apiVersion"], doc["kind"])]
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
        assert errors == [], f"{where}: {errors}"
        assert unknown_fields(doc, schema) == [], where


def test_crd_validation_is_live(crd_dir: Path) -> None:
    provider = _one("Provider")
    schema = load_schemas(crd_dir)[(provider["apiVersion"], "Provider")]
    provider["spec"]["type"] = "generic-hmac-sha1"
    provider["spec"]["adress"] = provider["spec"].pop("address")
    assert list(jsonschema.Draft7Validator(schema).iter_errors(provider))
    assert unknown_fields(provider, schema) == [".spec.adress"]


@pytest.mark.parametrize("directory", ["notifications", "install"])
def test_kustomizations_render(directory: str) -> None:
    kubectl = require_tool("kubectl")
    done = subprocess.run(
        [kubectl, "kustomize", str(FLUX_DIR / directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len([d for d in yaml.safe_load_all(done.stdout) if d]) == 2


def test_provider_signs_and_names_the_cluster_in_the_path() -> None:
    provider = _one("Provider")
    assert provider["spec"]["type"] == "generic-hmac"
    assert provider["spec"]["secretRef"]["name"]
    assert urlsplit(provider["spec"]["address"]).path == "/flux/prod-eu-1"
    alert = _one("Alert")
    assert alert["spec"]["providerRef"]["name"] == provider["metadata"]["name"]
    assert alert["spec"]["eventSeverity"] == "info"  # recoveries too, not errors only


def test_helm_release_installs_the_chart_with_valid_values() -> None:
    release, source = _one("HelmRelease"), _one("OCIRepository")
    assert release["spec"]["chartRef"] == {
        "kind": "OCIRepository",
        "name": source["metadata"]["name"],
    }
    assert source["spec"]["layerSelector"]["mediaType"] == HELM_CHART_LAYER
    objects = render_chart(release["spec"]["values"], namespace=release["spec"]["targetNamespace"])
    assert {"StatefulSet", "Deployment", "ServiceMonitor"} <= {o["kind"] for o in objects}
    # The release's values are the documented single-cluster install.
    assert (
        release["spec"]["values"]["bridge"]["flux"]
        == example_values("single-cluster")["bridge"]["flux"]
    )


async def test_signed_event_on_the_providers_path_is_filed_under_its_cluster(
    tmp_path: Path,
) -> None:
    objects = render_example("single-cluster")
    document = lay_out_pod(objects, tmp_path)
    config_path = in_pod(tmp_path, "/etc/fluxwatch/config/fluxwatch.yaml")
    config = config_from_mapping(
        yaml.safe_load(config_path.read_text()), base_dir=config_path.parent
    )
    # The Provider's Secret holds the same key as the bridge's hmac_keys_file.
    key = in_pod(tmp_path, document["bridge"]["flux"]["hmac_keys_file"]).read_text().strip()
    body = (EXAMPLES_DIR / "event-generic-webhook-as-delivered.json").read_bytes()
    assert json.loads(body)["metadata"]["cluster"] != "prod-eu-1"  # so the path must win
    path = urlsplit(_one("Provider")["spec"]["address"]).path
    bridge = Bridge(config, listen=("127.0.0.1", 0), console=io.StringIO())
    await bridge.start()
    try:
        async with aiohttp.ClientSession() as client:
            headers = {
                "Content-Type": "application/json",
                "Gotk-Component": "kustomize-controller",
                "X-Signature": "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest(),
            }
            url = f"http://127.0.0.1:{bridge.port}{path}"
            async with client.post(url, data=body, headers=headers) as response:
                assert response.status == 202
            async with client.post(
                url, data=body, headers={**headers, "X-Signature": "sha256=00"}
            ) as response:
                assert response.status == 401
    finally:
        await bridge.stop()
    (event,) = stored_events(bridge.state_dir)
    assert event["cluster"] == "prod-eu-1"
