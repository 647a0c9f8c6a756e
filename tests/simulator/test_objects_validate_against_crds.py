"""Every object state the engine produces validates against the real CRD schema of its version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from simulator.kinds import KINDS
from simulator.scenario import FAULTS_BY_KIND, AppMix, ClusterSpec, Scenario, preset
from simulator.server import SimulatorServer


def load_schemas(crd_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema; legacy CRDs add the versions old Flux served."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(crd_dir.glob("*.yaml")) + sorted((crd_dir / "legacy").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            key = (f"{group}/{version['name']}", kind)
            schemas.setdefault(key, version["schema"]["openAPIV3Schema"])
    return schemas


def unknown_fields(doc: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields a structural schema would prune: the apiserver would silently drop them, so a
    simulator emitting them would show clients data a real cluster never serves."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out: list[str] = []
    if isinstance(doc, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in doc.items():
            if path == "" and key == "metadata":
                continue  # ObjectMeta is validated by the apiserver, not the CRD schema
            if props is not None and key in props:
                out += unknown_fields(value, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                out += unknown_fields(value, extra, f"{path}.{key}")
            elif path == "" and key in ("apiVersion", "kind", "metadata"):
                continue
            elif props is not None or extra is not True:
                out.append(f"{path}.{key}")
    elif isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(doc):
            out += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return out


async def drive_through_every_fault(sim: SimulatorServer) -> None:
    """Fail every faultable object with every fault its kind has, let retries run out, heal,
    suspend and resume, and land commits on every source."""
    await sim.advance(60)
    for name in sim.cluster_names:
        handle = sim.cluster(name)
        for kind, faults in FAULTS_BY_KIND.items():
            for obj in handle.objects(kind):
                meta = obj["metadata"]
                for fault in faults:
                    handle.fail(kind, meta["namespace"], meta["name"], fault)
                    await sim.advance(450)
                    handle.heal(kind, meta["namespace"], meta["name"])
                    await sim.advance(120)
    for name in sim.cluster_names:
        handle = sim.cluster(name)
        for info in KINDS:
            for obj in handle.objects(info.kind):
                handle.reconcile(info.kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
        handle.suspend("Alert", "flux-system", "fluxwatch")
        handle.resume("Alert", "flux-system", "fluxwatch")
        handle.suspend("Kustomization", "flux-system", "flux-system")
        await sim.advance(700)
        handle.resume("Kustomization", "flux-system", "flux-system")
    for kind in ("GitRepository", "OCIRepository", "Bucket", "HelmRepository", "ImageRepository"):
        for obj in sim.cluster(sim.cluster_names[0]).objects(kind):
            sim.new_commit(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
    await sim.advance(1800)


EVERY_APP = Scenario(
    name="every-app",
    seed=5,
    clusters=tuple(
        ClusterSpec(
            name,
            flux=flux,  # type: ignore[arg-type]
            apps=AppMix(git=1, helm=3, oci=1, oci_helm=1, bucket=1, image=1, canary=2),
        )
        for name, flux in (("current", "current"), ("legacy", "legacy"))
    ),
)


@pytest.mark.parametrize(
    "scenario", [preset("small", seed=3), EVERY_APP], ids=["small", "every-app-wiring"]
)
async def test_every_state_validates(tmp_path: Path, crd_dir: Path, scenario: Scenario) -> None:
    schemas = load_schemas(crd_dir)
    validators = {key: jsonschema.Draft7Validator(schema) for key, schema in schemas.items()}
    async with SimulatorServer(scenario, state_dir=tmp_path, watch_history=1_000_000) as sim:
        await drive_through_every_fault(sim)
        problems: list[str] = []
        seen: dict[str, set[str]] = {}
        handled: set[str] = set()
        for store in sim.stores.values():
            for entry in store.history:
                obj = json.loads(entry.line)["object"]
                key = (obj["apiVersion"], obj["kind"])
                where = f"{store.name} {obj['kind']} {obj['metadata']['name']}"
                if key not in validators:
                    problems.append(f"{where}: no CRD serves {key}")
                    continue
                for error in validators[key].iter_errors(obj):
                    problems.append(f"{where}: {error.json_path}: {error.message}")
                problems += [
                    f"{where}: unknown field {f}" for f in unknown_fields(obj, schemas[key])
                ]
                if "lastHandledReconcileAt" in obj.get("status", {}):
                    handled.add(obj["kind"])
                for cond in obj.get("status", {}).get("conditions", []):
                    seen.setdefault(obj["kind"], set()).add(f"{cond['type']}={cond['reason']}")
    assert not problems, "\n".join(sorted(set(problems))[:40])
    # The drive really reached the failure states, not only the healthy ones.
    expected = {
        "GitRepository": "FetchFailed=GitOperationFailed",
        "Kustomization": "Ready=BuildFailed",
        "HelmRelease": "Stalled=RetriesExceeded",
        "HelmChart": "Ready=ChartPullFailed",
        "Canary": "Promoted=Failed",
    }
    assert handled, "no object echoed lastHandledReconcileAt"
    for kind, state in expected.items():
        assert state in seen.get(kind, set()), f"{kind} never reached {state}: {seen.get(kind)}"


@pytest.mark.parametrize(
    ("doc", "schema", "found"),
    [
        (
            {"spec": {"a": 1, "b": 2}},
            {"properties": {"spec": {"properties": {"a": {}}}}},
            [".spec.b"],
        ),
        (
            {"spec": {"m": {"x": 1}}},
            {"properties": {"spec": {"properties": {"m": {"additionalProperties": {}}}}}},
            [],
        ),
        (
            {"spec": {"v": {"x": 1}}},
            {
                "properties": {
                    "spec": {"properties": {"v": {"x-kubernetes-preserve-unknown-fields": True}}}
                }
            },
            [],
        ),
    ],
    ids=["pruned-field", "map", "preserved"],
)
def test_unknown_field_walker(doc: Any, schema: dict[str, Any], found: list[str]) -> None:
    assert unknown_fields(doc, schema) == found
