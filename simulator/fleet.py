"""Builds each cluster's Flux objects from a scenario: wired the way Flux wires them.

Per cluster: a ``flux-system`` bootstrap (GitRepository + Kustomization, an ``infra``
Kustomization after it), then app stacks owned by teams, each in its team's namespace:
GitRepository -> Kustomization (dependsOn infra); HelmRepository -> HelmChart -> HelmRelease;
OCIRepository -> Kustomization or HelmRelease (chartRef); Bucket -> Kustomization;
ImageRepository -> ImagePolicy -> ImageUpdateAutomation; a Flagger Canary beside a HelmRelease;
and the notification trio (Provider, Alert, Receiver). Everything random comes from ``seed``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from simulator.kinds import FLAGGER, IMAGE, KINDS
from simulator.model import Obj, hexdigest
from simulator.scenario import ClusterSpec

TEAMS = ("payments", "search", "checkout", "identity", "platform", "data")
# Teams whose namespaces were created with `flux create tenant` (label on part of the objects).
TENANTS = frozenset({"payments", "search", "checkout"})
APP_NAMES = (
    "podinfo", "frontend", "cart", "catalog", "ledger", "auth", "gateway", "billing",
    "reports", "notifier", "inventory", "pricing", "orders", "users", "profile", "ingest",
    "recommend", "media", "shipping", "tax",
)  # fmt: skip
OWNER_ANNOTATION = "fluxwatch.io/owner"
_FINALIZED = frozenset(
    [
        "Kustomization",
        "HelmRelease",
        "GitRepository",
        "OCIRepository",
        "Bucket",
        "HelmRepository",
        "HelmChart",
    ]
)
BOT = {"email": "fluxcdbot@users.noreply.github.com", "name": "fluxcdbot"}
SHARD_LABEL = "sharding.fluxcd.io/key"
TENANT_LABEL = "toolkit.fluxcd.io/tenant"


@dataclass(slots=True)
class Seeded:
    """An object as first created: engine state plus metadata and spec."""

    obj: Obj
    meta: dict[str, Any]
    spec: dict[str, Any]


class _Builder:
    def __init__(self, seed: int, cluster: ClusterSpec, start: float) -> None:
        self.seed = seed
        self.cluster = cluster
        self.start = start
        self.rng = random.Random(f"{seed}/{cluster.name}")
        self.out: list[Seeded] = []
        self.by_key: dict[tuple[str, str, str], Obj] = {}
        served = {k.group for k in KINDS} - set(cluster.missing_groups)
        self.has_image = IMAGE in served
        self.has_flagger = FLAGGER in served
        self.shard_counter = 0

    def add(
        self,
        kind: str,
        namespace: str,
        name: str,
        interval: float,
        spec: dict[str, Any],
        team: str | None,
        *,
        source: Obj | None = None,
        depends_on: tuple[Obj, ...] = (),
        extra: dict[str, Any] | None = None,
    ) -> Obj:
        extra = dict(extra or {})
        if "url" in spec:
            extra.setdefault("url", spec["url"])
        obj = Obj(
            cluster=self.cluster.name,
            kind=kind,
            namespace=namespace,
            name=name,
            interval=interval,
            extra=extra,
            source=source,
            depends_on=depends_on,
        )
        if source is not None:
            source.dependents.append(obj)
        for dep in depends_on:
            dep.dependents.append(obj)
        labels = {
            "kustomize.toolkit.fluxcd.io/name": "flux-system",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        }
        annotations: dict[str, str] = {}
        if team is not None:
            annotations[OWNER_ANNOTATION] = team
            if team in TENANTS:
                labels[TENANT_LABEL] = team
            self.shard_counter += 1
            if self.shard_counter % 3 == 0:
                labels[SHARD_LABEL] = f"shard{1 + self.shard_counter // 3 % 2}"
        if kind == "GitRepository" and name == "flux-system":
            labels = {}
        created = self.start - self.rng.uniform(3 * 86400, 90 * 86400)
        meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": str(
                uuid.UUID(hexdigest(self.seed, self.cluster.name, kind, namespace, name, length=32))
            ),
            "generation": 1,
            "creationTimestamp": created,  # replaced by an RFC 3339 string by the engine
            "labels": labels,
        }
        if annotations:
            meta["annotations"] = annotations
        if kind in _FINALIZED:
            meta["finalizers"] = ["finalizers.fluxcd.io"]
        self.out.append(Seeded(obj, meta, spec))
        self.by_key[obj.key] = obj
        return obj

    # --- stacks -------------------------------------------------------------------------

    def bootstrap(self) -> tuple[Obj, Obj]:
        git = self.add(
            "GitRepository", "flux-system", "flux-system", 60.0,
            {
                "interval": "1m0s",
                "ref": {"branch": "main"},
                "secretRef": {"name": "flux-system"},
                "timeout": "60s",
                "url": f"ssh://git@github.com/acme/fleet-{self.cluster.name}",
            },
            None, extra={"branch": "main"},
        )  # fmt: skip
        root = self.add(
            "Kustomization", "flux-system", "flux-system", 600.0,
            {
                "interval": "10m0s",
                "path": f"./clusters/{self.cluster.name}",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
            },
            None, source=git, extra={"resources": 24},
        )  # fmt: skip
        infra = self.add(
            "Kustomization", "flux-system", "infra", 600.0,
            {
                "dependsOn": [{"name": "flux-system"}],
                "interval": "10m",
                "path": "./infrastructure",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                "timeout": "5m",
                "wait": True,
            },
            None, source=git, depends_on=(root,), extra={"resources": 12, "wait": True},
        )  # fmt: skip
        return git, infra

    def git_app(self, team: str, app: str, infra: Obj) -> None:
        repo = self.add(
            "GitRepository", team, app, 300.0,
            {
                "interval": "5m",
                "ref": {"branch": "main"},
                "url": f"https://github.com/acme/{app}",
            },
            team, extra={"branch": "main"},
        )  # fmt: skip
        wait = self.rng.random() < 0.5
        self.add(
            "Kustomization", team, app, 300.0,
            {
                "dependsOn": [{"name": "infra", "namespace": "flux-system"}],
                "interval": "5m",
                "path": "./deploy/production",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": app},
                "targetNamespace": team,
                "timeout": "3m",
                "wait": wait,
            },
            team, source=repo, depends_on=(infra,),
            extra={"resources": self.rng.randint(3, 12), "wait": wait},
        )  # fmt: skip

    def helm_app(self, team: str, app: str, after: Obj | None = None) -> Obj:
        repo = self.add(
            "HelmRepository", team, f"{app}-charts", 600.0,
            {"interval": "10m", "url": f"https://charts.acme.example/{app}"},
            team, extra={"chart": app, "major": self.rng.randint(1, 6)},
        )  # fmt: skip
        chart = self.add(
            "HelmChart", team, f"{team}-{app}", 300.0,
            {
                "chart": app,
                "interval": "5m",
                "reconcileStrategy": "ChartVersion",
                "sourceRef": {"kind": "HelmRepository", "name": f"{app}-charts"},
                "version": "*",
            },
            team, source=repo, extra={"chart": app},
        )  # fmt: skip
        test = self.rng.random() < 0.4
        # Some releases wait for another (dependsOn names HelmReleases only, as in Flux).
        depends = (
            {"dependsOn": [{"name": after.name, "namespace": after.namespace}]} if after else {}
        )
        return self.add(
            "HelmRelease", team, app, 600.0,
            {
                **depends,
                "chart": {
                    "spec": {
                        "chart": app,
                        "interval": "5m",
                        "sourceRef": {"kind": "HelmRepository", "name": f"{app}-charts"},
                        "version": "*",
                    }
                },
                "install": {"remediation": {"retries": 3}},
                "interval": "10m",
                "releaseName": app,
                "test": {"enable": test},
                "timeout": "5m",
                "upgrade": {"remediation": {"retries": 3}},
                "values": {"replicaCount": self.rng.randint(1, 4)},
            },
            team, source=chart, depends_on=(after,) if after else (),
            extra={"chart": app, "test": test, "retries": 3, "resources": self.rng.randint(3, 9)},
        )  # fmt: skip

    def oci_app(self, team: str, app: str) -> None:
        repo = self.add(
            "OCIRepository", team, f"{app}-manifests", 300.0,
            {
                "interval": "5m",
                "ref": {"tag": "latest"},
                "url": f"oci://ghcr.io/acme/manifests/{app}",
            },
            team, extra={"tag": "latest"},
        )  # fmt: skip
        self.add(
            "Kustomization", team, f"{app}-oci", 600.0,
            {
                "interval": "10m",
                "path": "./",
                "prune": True,
                "sourceRef": {"kind": "OCIRepository", "name": f"{app}-manifests"},
                "targetNamespace": team,
            },
            team, source=repo, extra={"resources": self.rng.randint(2, 8), "oci": True},
        )  # fmt: skip

    def oci_helm_app(self, team: str, app: str) -> None:
        repo = self.add(
            "OCIRepository", team, f"{app}-chart", 300.0,
            {
                "interval": "5m",
                "layerSelector": {
                    "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                    "operation": "copy",
                },
                "ref": {"semver": ">= 1.0.0"},
                "url": f"oci://ghcr.io/acme/charts/{app}",
            },
            team, extra={"semver": True, "chart": app},
        )  # fmt: skip
        self.add(
            "HelmRelease", team, app, 600.0,
            {
                "chartRef": {"kind": "OCIRepository", "name": f"{app}-chart"},
                "interval": "10m",
                "releaseName": app,
                "upgrade": {"remediation": {"retries": 2}},
            },
            team, source=repo,
            extra={"chart": app, "test": False, "retries": 2, "resources": 4, "oci": True},
        )  # fmt: skip

    def bucket_app(self, team: str, app: str) -> None:
        bucket = self.add(
            "Bucket", team, f"{app}-config", 300.0,
            {
                "bucketName": f"acme-{app}-config",
                "endpoint": "minio.storage.svc.cluster.local:9000",
                "insecure": True,
                "interval": "5m",
                "provider": "generic",
                "secretRef": {"name": "minio-credentials"},
            },
            team,
        )  # fmt: skip
        self.add(
            "Kustomization", team, f"{app}-config", 600.0,
            {
                "interval": "10m",
                "path": "./",
                "prune": False,
                "sourceRef": {"kind": "Bucket", "name": f"{app}-config"},
                "targetNamespace": team,
            },
            team, source=bucket, extra={"resources": self.rng.randint(1, 4)},
        )  # fmt: skip

    def image_app(self, team: str, app: str, git: Obj) -> None:
        image = f"ghcr.io/acme/{app}"
        repo = self.add(
            "ImageRepository", team, app, 300.0,
            {"image": image, "interval": "5m"},
            team, extra={"image": image},
        )  # fmt: skip
        policy = self.add(
            "ImagePolicy", team, app, 300.0,
            {"imageRepositoryRef": {"name": app}, "policy": {"semver": {"range": ">=1.0.0"}}},
            team, source=repo, extra={"image": image},
        )  # fmt: skip
        self.add(
            "ImageUpdateAutomation", "flux-system", f"{team}-{app}", 1800.0,
            {
                "git": {
                    "checkout": {"ref": {"branch": "main"}},
                    "commit": {
                        "author": BOT,
                        "messageTemplate": "chore: update {{ .AutomationObject }} images",
                    },
                    "push": {"branch": "main"},
                },
                "interval": "30m",
                "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                "update": {"path": f"./apps/{app}", "strategy": "Setters"},
            },
            team, source=git, extra={"policy": policy},
        )  # fmt: skip

    def canary(self, team: str, app: str, release: Obj) -> None:
        self.add(
            "Canary", team, app, 60.0,
            {
                "analysis": {
                    "interval": "30s",
                    "maxWeight": 50,
                    "metrics": [
                        {
                            "interval": "1m",
                            "name": "request-success-rate",
                            "thresholdRange": {"min": 99},
                        },
                        {
                            "interval": "30s",
                            "name": "request-duration",
                            "thresholdRange": {"max": 500},
                        },
                    ],
                    "stepWeight": 10,
                    "threshold": 5,
                },
                "progressDeadlineSeconds": 600,
                "service": {"port": 9898, "targetPort": 9898},
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
            },
            team, source=release,
        )  # fmt: skip

    def notification(self) -> None:
        self.add(
            "Provider", "flux-system", "fluxwatch", 0.0,
            {
                "address": "http://fluxwatch-bridge.monitoring.svc:8080/events",
                "secretRef": {"name": "fluxwatch-hmac"},
                "type": "generic-hmac",
            },
            None,
        )  # fmt: skip
        self.add(
            "Alert", "flux-system", "fluxwatch", 0.0,
            {
                "eventMetadata": {"cluster": self.cluster.name},
                "eventSeverity": "info",
                "eventSources": [
                    {"kind": kind, "name": "*", "namespace": "*"}
                    for kind in ("GitRepository", "Kustomization", "HelmRelease", "OCIRepository")
                ],
                "providerRef": {"name": "fluxwatch"},
            },
            None,
        )  # fmt: skip
        self.add(
            "Receiver", "flux-system", "github", 0.0,
            {
                "events": ["ping", "push"],
                "resources": [{"kind": "GitRepository", "name": "flux-system"}],
                "secretRef": {"name": "receiver-token"},
                "type": "github",
            },
            None,
        )  # fmt: skip


def build_cluster(seed: int, cluster: ClusterSpec, start: float) -> list[Seeded]:
    """All objects of one cluster, in creation order."""
    b = _Builder(seed, cluster, start)
    apps = cluster.apps
    git, infra = b.bootstrap()
    counter = 0

    def next_app() -> tuple[str, str]:
        nonlocal counter
        team = TEAMS[counter % len(TEAMS)]
        base = APP_NAMES[counter % len(APP_NAMES)]
        app = base if counter < len(APP_NAMES) else f"{base}-{counter // len(APP_NAMES)}"
        counter += 1
        return team, app

    for _ in range(apps.git):
        b.git_app(*next_app(), infra)
    releases: list[tuple[str, str, Obj]] = []
    for i in range(apps.helm):
        team, app = next_app()
        after = releases[0][2] if i % 3 == 2 else None
        releases.append((team, app, b.helm_app(team, app, after)))
    for _ in range(apps.oci):
        b.oci_app(*next_app())
    for _ in range(apps.oci_helm):
        b.oci_helm_app(*next_app())
    for _ in range(apps.bucket):
        b.bucket_app(*next_app())
    if b.has_image:
        for _ in range(apps.image):
            b.image_app(*next_app(), git)
    if b.has_flagger and releases:
        for i in range(apps.canary):
            team, app, release = releases[i % len(releases)]
            name = app if i < len(releases) else f"{app}-{i // len(releases)}"
            b.canary(team, name, release)
    if apps.notification:
        b.notification()
    return b.out
