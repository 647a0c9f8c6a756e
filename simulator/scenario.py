"""Scenarios: which clusters exist, what runs in them and what goes wrong, as pure data.

A scenario is loaded from YAML (``load_scenario``) or taken from a built-in preset (``preset``).
Everything random downstream is drawn from ``seed``, so a scenario always yields the same fleet
and, on the manual clock, the same history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from simulator.kinds import BY_KIND, GROUPS, PROFILES, FluxProfile

Fault = Literal["fetch", "build", "health", "install", "upgrade", "test", "analysis"]
FAULTS: tuple[Fault, ...] = get_args(Fault)
Action = Literal["fail", "heal", "suspend", "resume", "reconcile", "commit", "outage", "restore"]
ACTIONS: tuple[Action, ...] = get_args(Action)
OutageMode = Literal["refuse", "unavailable"]

# Which faults each kind can suffer, and the Flux reason each one surfaces as.
FAULTS_BY_KIND: Mapping[str, tuple[Fault, ...]] = {
    "GitRepository": ("fetch",),
    "OCIRepository": ("fetch",),
    "Bucket": ("fetch",),
    "HelmRepository": ("fetch",),
    "HelmChart": ("fetch",),
    "ImageRepository": ("fetch",),
    "ImageUpdateAutomation": ("fetch",),
    "Kustomization": ("build", "health"),
    "HelmRelease": ("install", "upgrade", "test"),
    "Canary": ("analysis",),
}


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class AppMix:
    """How many app stacks of each wiring a cluster runs (besides its flux-system bootstrap)."""

    git: int = 1  # GitRepository -> Kustomization (dependsOn infra)
    helm: int = 1  # HelmRepository -> HelmChart -> HelmRelease
    oci: int = 1  # OCIRepository -> Kustomization
    oci_helm: int = 0  # OCIRepository (chart) -> HelmRelease via chartRef
    bucket: int = 1  # Bucket -> Kustomization
    image: int = 1  # ImageRepository -> ImagePolicy -> ImageUpdateAutomation
    canary: int = 1  # a Flagger Canary for a HelmRelease's workload
    notification: int = 1  # Provider + Alert + Receiver


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    name: str
    flux: FluxProfile = "current"
    missing_groups: tuple[str, ...] = ()
    apps: AppMix = AppMix()


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Random faults: ``per_hour`` fleet-wide per 1,000 objects, picked by ``weights``."""

    per_hour: float = 0.0
    weights: Mapping[str, float] = field(default_factory=lambda: {f: 1.0 for f in FAULTS})
    heal_after: tuple[float, float] = (120.0, 900.0)


@dataclass(frozen=True, slots=True)
class Commits:
    """New revisions landing on sources: every ``every`` seconds one source of the fleet-wide
    app set gets a commit, which lands on clusters one after another ``stagger`` apart."""

    every: float = 0.0
    stagger: tuple[float, float] = (5.0, 60.0)


@dataclass(frozen=True, slots=True)
class Outages:
    per_hour: float = 0.0  # whole-cluster outages per hour, fleet-wide
    duration: tuple[float, float] = (60.0, 300.0)
    modes: tuple[OutageMode, ...] = ("refuse", "unavailable")


@dataclass(frozen=True, slots=True)
class ScriptStep:
    """One scripted change at simulated second ``at`` (``cluster`` None = every cluster)."""

    at: float
    action: Action
    cluster: str | None = None
    kind: str = ""
    namespace: str = ""
    name: str = ""
    fault: Fault | None = None
    mode: OutageMode = "unavailable"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    seed: int
    clusters: tuple[ClusterSpec, ...]
    faults: FaultRates = FaultRates()
    commits: Commits = Commits()
    outages: Outages = Outages()
    script: tuple[ScriptStep, ...] = ()
    source: str = ""  # the file it came from, for error messages

    def with_seed(self, seed: int) -> Scenario:
        return replace(self, seed=seed)


# --- presets ---------------------------------------------------------------------------------

_FLEET_APPS = AppMix(
    git=13, helm=10, oci=5, oci_helm=3, bucket=4, image=3, canary=5, notification=1
)


def preset(name: str, seed: int = 1) -> Scenario:
    """The built-in scenarios: ``small`` (3 clusters x ~22 objects, one on an old Flux, one
    without image automation), ``fleet`` (50 x 100) and ``f500`` (500 x 100)."""
    if name == "small":
        return Scenario(
            name="small",
            seed=seed,
            clusters=(
                ClusterSpec("c1"),
                ClusterSpec("c2", missing_groups=("image.toolkit.fluxcd.io",)),
                ClusterSpec("c3-legacy", flux="legacy"),
            ),
            faults=FaultRates(per_hour=60.0),
            commits=Commits(every=300.0, stagger=(5.0, 30.0)),
        )
    if name in ("fleet", "f500"):
        count = 50 if name == "fleet" else 500
        clusters = tuple(
            ClusterSpec(
                f"{'prod' if i % 3 else 'staging'}-{i:03d}",
                flux="legacy" if i % 10 == 9 else "current",
                apps=_FLEET_APPS,
            )
            for i in range(count)
        )
        return Scenario(
            name=name,
            seed=seed,
            clusters=clusters,
            faults=FaultRates(per_hour=20.0),
            commits=Commits(every=120.0, stagger=(2.0, 20.0)),
            outages=Outages(per_hour=count / 25),
        )
    raise ScenarioError(f"unknown preset {name!r}; presets: small, fleet, f500")


PRESETS = ("small", "fleet", "f500")


# --- YAML loading ----------------------------------------------------------------------------


class _Reader:
    """Typed access to one mapping of the file, with errors naming file and key path."""

    def __init__(self, source: str, path: str, doc: Any) -> None:
        if not isinstance(doc, dict):
            raise ScenarioError(f"{source}: {path or 'top level'}: expected a mapping")
        self.source, self.path, self.doc = source, path, doc
        self.used: set[str] = set()

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.source}: {self._where(key)}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.used.add(key)
        if key not in self.doc:
            return default
        value = self.doc[key]
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            raise self.fail(key, f"expected a number, got {value!r}")
        if not isinstance(value, kind):
            raise self.fail(key, f"expected {_type_name(kind)}, got {type(value).__name__}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise self.fail(key, "must not be negative")
        return value

    def child(self, key: str) -> _Reader | None:
        value = self.get(key, dict, None)
        return None if value is None else _Reader(self.source, self._where(key), value)

    def children(self, key: str) -> list[_Reader]:
        items = self.get(key, list, [])
        return [
            _Reader(self.source, f"{self._where(key)}[{i}]", item) for i, item in enumerate(items)
        ]

    def pair(self, key: str, default: tuple[float, float]) -> tuple[float, float]:
        value = self.get(key, list, None)
        if value is None:
            return default
        if (
            len(value) != 2
            or not all(isinstance(v, (int, float)) for v in value)
            or value[0] > value[1]
        ):
            raise self.fail(key, "expected [min, max] seconds")
        return (float(value[0]), float(value[1]))

    def choice(self, key: str, options: tuple[str, ...], default: Any) -> Any:
        value = self.get(key, str, default)
        if value is not None and value not in options:
            raise self.fail(key, f"{value!r} is not one of {', '.join(options)}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.doc) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown key")


def _type_name(kind: type | tuple[type, ...]) -> str:
    names = {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        int: "an integer",
        float: "a number",
    }
    if isinstance(kind, tuple):
        return "a number"
    return names.get(kind, kind.__name__)


def _apps(reader: _Reader | None, base: AppMix) -> AppMix:
    if reader is None:
        return base
    values = {f: reader.get(f, int, getattr(base, f)) for f in AppMix.__dataclass_fields__}
    reader.finish()
    return AppMix(**values)


def _clusters(top: _Reader) -> tuple[ClusterSpec, ...]:
    clusters: list[ClusterSpec] = []
    default_apps = _apps(top.child("apps"), AppMix())
    for entry in top.children("clusters"):
        flux = entry.choice("flux", PROFILES, "current")
        missing = entry.get("missing_groups", list, [])
        for group in missing:
            if group not in GROUPS:
                raise entry.fail("missing_groups", f"{group!r} is not one of {', '.join(GROUPS)}")
        apps = _apps(entry.child("apps"), default_apps)
        name = entry.get("name", str, None)
        prefix = entry.get("name_prefix", str, None)
        count = entry.get("count", int, None)
        if (name is None) == (prefix is None):
            raise entry.fail("name", "give either name or name_prefix with count")
        names = [name] if name is not None else [f"{prefix}{i:03d}" for i in range(count or 1)]
        for n in names:
            if not n or not all(c.isalnum() or c == "-" for c in n):
                raise entry.fail("name", f"{n!r} is not a DNS label")
            clusters.append(ClusterSpec(n, flux, tuple(missing), apps))
        entry.finish()
    if not clusters:
        raise top.fail("clusters", "at least one cluster is required")
    seen: set[str] = set()
    for c in clusters:
        if c.name in seen:
            raise top.fail("clusters", f"cluster {c.name!r} is defined twice")
        seen.add(c.name)
    return tuple(clusters)


def _script(top: _Reader, cluster_names: set[str]) -> tuple[ScriptStep, ...]:
    steps: list[ScriptStep] = []
    for entry in top.children("script"):
        at = float(entry.get("at", (int, float), 0))
        action = entry.choice("action", ACTIONS, None)
        if action is None:
            raise entry.fail("action", "required")
        cluster = entry.get("cluster", str, None)
        if cluster is not None and cluster not in cluster_names:
            raise entry.fail("cluster", f"no cluster named {cluster!r}")
        kind = entry.get("kind", str, "")
        if kind and kind not in BY_KIND:
            raise entry.fail("kind", f"unknown kind {kind!r}")
        fault = entry.choice("fault", FAULTS, None)
        if action in ("fail", "heal", "suspend", "resume", "reconcile", "commit"):
            for key in ("kind", "name"):
                if not entry.doc.get(key):
                    raise entry.fail(key, f"required for action {action}")
        if action == "fail":
            if fault is None:
                raise entry.fail("fault", "required for action fail")
            if fault not in FAULTS_BY_KIND.get(kind, ()):
                raise entry.fail("fault", f"{kind} cannot suffer a {fault!r} fault")
        steps.append(
            ScriptStep(
                at=at,
                action=action,
                cluster=cluster,
                kind=kind,
                namespace=entry.get("namespace", str, "flux-system"),
                name=entry.get("name", str, ""),
                fault=fault,
                mode=entry.choice("mode", ("refuse", "unavailable"), "unavailable"),
            )
        )
        entry.finish()
    return tuple(sorted(steps, key=lambda s: s.at))


def parse_scenario(doc: Any, source: str) -> Scenario:
    """Build a Scenario from a decoded YAML document; ``source`` names it in errors."""
    top = _Reader(source, "", doc)
    name = top.get("name", str, Path(source).stem)
    seed = top.get("seed", int, 1)
    clusters = _clusters(top)
    faults = FaultRates()
    if (f := top.child("faults")) is not None:
        weights = f.get("weights", dict, None)
        if weights is not None:
            for key, value in weights.items():
                if key not in FAULTS:
                    raise f.fail(f"weights.{key}", f"unknown fault; faults: {', '.join(FAULTS)}")
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                    raise f.fail(f"weights.{key}", "expected a non-negative number")
        faults = FaultRates(
            per_hour=float(f.get("per_hour", (int, float), 0.0)),
            weights={k: float(v) for k, v in (weights or FaultRates().weights).items()},
            heal_after=f.pair("heal_after", FaultRates().heal_after),
        )
        f.finish()
    commits = Commits()
    if (c := top.child("commits")) is not None:
        commits = Commits(
            every=float(c.get("every", (int, float), 0.0)),
            stagger=c.pair("stagger", Commits().stagger),
        )
        c.finish()
    outages = Outages()
    if (o := top.child("outages")) is not None:
        modes = o.get("modes", list, list(Outages().modes))
        for mode in modes:
            if mode not in ("refuse", "unavailable"):
                raise o.fail("modes", f"{mode!r} is not one of refuse, unavailable")
        outages = Outages(
            per_hour=float(o.get("per_hour", (int, float), 0.0)),
            duration=o.pair("duration", Outages().duration),
            modes=tuple(modes),
        )
        o.finish()
    script = _script(top, {c.name for c in clusters})
    top.finish()
    return Scenario(name, seed, clusters, faults, commits, outages, script, source)


def load_scenario(path: Path) -> Scenario:
    """Read a scenario file; a ScenarioError names the file and the offending key."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse_scenario(doc, str(path))
