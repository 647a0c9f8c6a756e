"""Every object of every render validates against the schema the API server would apply.

Built-in kinds against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: an unknown
field is an error) for the oldest Kubernetes the chart supports and the newest known;
ServiceMonitor and PrometheusRule against the Prometheus Operator CRDs kept in tests/deploy/crds.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.renders import Manifest, example_names, render_example
from tests.simulator.test_objects_validate_against_crds import load_schemas, unknown_fields

PROMETHEUS_OPERATOR_CRDS = Path(__file__).parent / "crds"
KUBERNETES_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())


def validate_builtin(obj: Manifest, version: str) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


def validate_custom(obj: Manifest, schemas: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """Schema errors plus fields the API server would prune, as readable lines."""
    schema = schemas.get((obj["apiVersion"], obj["kind"]))
    if schema is None:
        return [f"no CRD for {obj['apiVersion']} {obj['kind']}"]
    validator = jsonschema.Draft7Validator(schema)
    problems = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)
    ]
    return problems + [f"{path}: unknown field" for path in unknown_fields(obj, schema)]


@pytest.fixture(scope="module")
def operator_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    return load_schemas(PROMETHEUS_OPERATOR_CRDS)


@pytest.mark.parametrize("example", example_names())
def test_every_object_validates(
    example: str, operator_schemas: dict[tuple[str, str], dict[str, Any]]
) -> None:
    for obj in render_example(example):
        where = f"{example}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            assert validate_custom(obj, operator_schemas) == [], where
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                validate_builtin(obj, version)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{where} (Kubernetes {version}): {exc.message}")


def test_monitoring_example_has_operator_objects() -> None:
    kinds = {o["kind"] for o in render_example("monitoring")}
    assert "ServiceMonitor" in kinds


@pytest.mark.parametrize(
    ("mutate", "kind"),
    [
        (
            lambda o: o["spec"]["template"]["spec"]["containers"][0].update(securityContex={}),
            "StatefulSet",
        ),
        (lambda o: o["spec"].update(replicas="three"), "StatefulSet"),
        (lambda o: o["spec"]["ports"][0].update(port="http"), "Service"),
    ],
)
def test_kubernetes_schemas_catch_a_broken_object(mutate: Any, kind: str) -> None:
    """The validation above is live: an unknown field or a wrong type is reported."""
    (obj,) = [copy.deepcopy(o) for o in render_example("defaults") if o["kind"] == kind][:1]
    mutate(obj)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_builtin(obj, KUBERNETES_VERSIONS[-1])


def test_operator_crds_catch_a_broken_service_monitor(
    operator_schemas: dict[tuple[str, str], dict[str, Any]],
) -> None:
    monitor = copy.deepcopy(
        next(o for o in render_example("monitoring") if o["kind"] == "ServiceMonitor")
    )
    monitor["spec"]["endpoints"][0]["honourLabels"] = True
    monitor["spec"]["endpoints"][0]["interval"] = "thirty seconds"
    problems = validate_custom(monitor, operator_schemas)
    assert any("honourLabels" in p for p in problems)
    assert any("interval" in p for p in problems)
