"""What Flux's controllers do to each kind: the lived-in state objects start in, and each run.

Sources fetch and store artifacts, Kustomizations and HelmReleases apply them (through
``Reconciling`` and ``Ready=Unknown``), image policies and automations follow new tags, and
Flagger canaries step their analysis. Every function acts on one object through the engine,
which owns the clock, the queue and the writes to the cluster stores.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

from simulator import records
from simulator.model import Obj, go_duration, hexdigest
from simulator.status import SOURCE_KINDS

if TYPE_CHECKING:
    from simulator.engine import Engine

# The engine's logger: what a controller did is part of the engine's story in the logs.
log = logging.getLogger("simulator.engine")

DEPENDENCY_RETRY = 30.0  # kustomize/helm-controller --requeue-dependency default
ARTIFACT_RETRY = 30.0
HELM_RETRY = 20.0
CANARY_STEP = 30.0


# --- starting state -----------------------------------------------------------------


def settle_initial(engine: Engine, obj: Obj, rng: random.Random) -> None:
    """A lived-in, healthy starting state: artifacts stored hours ago, releases at their
    second or later version, histories with a previous revision."""
    kind = obj.kind
    ago = engine.start - rng.uniform(600.0, 3 * 86400.0)
    if kind in SOURCE_KINDS or kind == "ImageRepository":
        obj.upstream = engine.head(obj)
        if kind == "HelmChart" and obj.source is not None:
            obj.upstream = obj.source.upstream
            ago = max(ago, obj.source.artifact_time + 5)
        _store_artifact(engine, obj, ago, rng)
        return
    source = obj.source
    if kind == "Kustomization" and source is not None:
        rev = source.artifact_rev
        first = source.artifact_time + rng.uniform(2.0, 30.0)
        last = engine.start - rng.uniform(0.0, obj.interval)
        duration = rng.uniform(0.3, 4.0)
        obj.applied_rev = obj.attempted_rev = rev
        prev = records.source_revision(engine.seed, source, source.upstream - 1)
        obj.history = [
            records.ks_history_entry(obj, rev, "ReconciliationSucceeded", first, last, duration),
            records.ks_history_entry(
                obj, prev, "ReconciliationSucceeded", first - 86400, first - 60, duration
            ),
        ]
        obj.history[0]["totalReconciliations"] = rng.randint(1, 200)
        obj.history[1]["totalReconciliations"] = rng.randint(20, 500)
        message = f"Applied revision: {rev}"
        obj.set_cond("Ready", "True", "ReconciliationSucceeded", message, first)
        if obj.extra.get("wait"):
            obj.set_cond("Healthy", "True", "Succeeded", "Health check passed", first)
    elif kind == "HelmRelease" and source is not None:
        version = records.chart_version(engine.seed, obj)
        first = source.artifact_time + rng.uniform(5.0, 60.0)
        obj.release_version = rng.randint(1, 12)
        previous = records.release_entry(
            engine.seed,
            obj,
            records.chart_version(engine.seed, obj, -1),
            "superseded",
            first - 86400,
            "upgrade",
        )
        previous["version"] = obj.release_version
        obj.release_version += 1
        current = records.release_entry(engine.seed, obj, version, "deployed", first, "upgrade")
        obj.history = [current, previous]
        obj.attempted_rev = version
        obj.last_action = "upgrade"
        obj.last_duration = rng.uniform(2.0, 30.0)
        _released_ok(engine, obj, version, "upgrade", first)
    elif kind == "ImagePolicy" and source is not None:
        obj.applied_rev = records.latest_tag(source)
        obj.extra["previous"] = f"1.{max(source.upstream - 1, 0)}.0"
        message = f"Latest image tag for {obj.extra['image']} resolved to {obj.applied_rev}"
        obj.set_cond("Ready", "True", "Succeeded", message, source.artifact_time)
    elif kind == "ImageUpdateAutomation" and source is not None:
        policy: Obj = obj.extra["policy"]
        obj.artifact_time = engine.start - rng.uniform(0.0, obj.interval)
        obj.applied_rev = hexdigest(obj.cluster, obj.ref, "push", policy.applied_rev, length=40)
        obj.extra["push_time"] = ago
        obj.extra["observed_tag"] = policy.applied_rev
        obj.attempted_rev = source.artifact_rev
        obj.set_cond("Ready", "True", "Succeeded", "repository up-to-date", ago)
    elif kind == "Receiver":
        path = "/hook/" + hexdigest("token", obj.name, obj.namespace)
        obj.set_cond("Ready", "True", "Succeeded", f"Receiver initialized for path: {path}", ago)
    elif kind == "Canary" and source is not None:
        obj.attempted_rev = obj.applied_rev = source.attempted_rev
        obj.extra["phase"] = "Succeeded"
        obj.artifact_time = ago
        obj.set_cond(
            "Promoted",
            "True",
            "Succeeded",
            "Canary analysis completed successfully, promotion finished.",
            ago,
        )


def _store_artifact(engine: Engine, obj: Obj, at: float, rng: random.Random | None = None) -> None:
    rng = rng or engine.rng
    obj.artifact_rev = records.source_revision(engine.seed, obj, obj.upstream)
    obj.artifact_time = at
    obj.artifact_size = rng.randint(2_000, 400_000)
    obj.observed_generation = obj.generation
    rev = obj.artifact_rev
    if obj.kind == "ImageRepository":
        obj.extra["tags"] = [f"1.{i}.0" for i in range(obj.upstream + 1)]
        message = f"successful scan: found {obj.upstream + 1} tags"
        obj.set_cond("Ready", "True", "Succeeded", message, at)
        return
    if obj.kind == "HelmChart":
        message = f"pulled '{obj.extra['chart']}' chart with version '{rev}'"
        reason = "ChartPullSucceeded"
    elif obj.kind == "HelmRepository":
        message = f"stored artifact: revision '{rev}'"
        reason = "Succeeded"
    else:
        message = f"stored artifact for revision '{rev}'"
        reason = "Succeeded"
    obj.set_cond("Ready", "True", reason, message, at)
    obj.set_cond("ArtifactInStorage", "True", reason, message, at)
    obj.drop_cond("FetchFailed")
    obj.drop_cond("Reconciling")


# --- reconcilers --------------------------------------------------------------------


def reconcile(engine: Engine, obj: Obj) -> None:
    if obj.suspended:
        engine.schedule(obj, obj.interval)
        return
    requested = obj.extra.get("requested_at")
    handled = requested is not None and requested != obj.extra.get("handled_at")
    if handled:
        obj.extra["handled_at"] = requested
    kind = obj.kind
    if kind in SOURCE_KINDS or kind == "ImageRepository":
        _reconcile_source(engine, obj)
    elif kind in ("Kustomization", "HelmRelease"):
        _start_apply(engine, obj)
    elif kind == "ImagePolicy":
        _reconcile_policy(engine, obj)
    elif kind == "ImageUpdateAutomation":
        _reconcile_automation(engine, obj)
    elif kind == "Canary":
        _reconcile_canary(engine, obj)
    if handled:
        engine.commit(obj)  # lastHandledReconcileAt, even when nothing else changed
    if obj.interval > 0 and obj.due <= engine.now and not obj.busy:
        engine.schedule(obj, obj.interval)


def _reconcile_source(engine: Engine, obj: Obj) -> None:
    if obj.kind == "HelmChart":
        repo = obj.source
        if repo is None or not repo.artifact_rev:
            return
        obj.upstream = repo.upstream
    if obj.fault == "fetch":
        _fail_source(engine, obj)
        return
    changed = records.source_revision(engine.seed, obj, obj.upstream) != obj.artifact_rev
    recovered = not obj.ready()
    if not (changed or recovered or obj.kind == "ImageRepository"):
        return
    _store_artifact(engine, obj, engine.now)
    engine.commit(obj)
    if changed or recovered:
        reason = "NewArtifact" if changed else "Succeeded"
        message = obj.conditions["Ready"].message
        engine.record_event(obj, "info", reason, message, obj.artifact_rev)
    if changed:
        for dependent in obj.dependents:
            engine.trigger(dependent)


def _fail_source(engine: Engine, obj: Obj) -> None:
    kind = obj.kind
    reason, message = records.fetch_failure(obj)
    was_failing = "FetchFailed" in obj.conditions or (kind == "ImageRepository" and not obj.ready())
    obj.set_cond("Ready", "False", reason, message, engine.now)
    if kind != "ImageRepository":
        obj.set_cond("FetchFailed", "True", reason, message, engine.now)
        obj.set_cond(
            "Reconciling",
            "True",
            "ProgressingWithRetry",
            f"building artifact: new upstream revision '{obj.artifact_rev}'"
            if obj.artifact_rev
            else "building artifact",
            engine.now,
        )
    engine.commit(obj)
    engine.record_event(obj, "error", reason, message, obj.artifact_rev)
    if not was_failing:
        log.info("%s: %s %s failed: %s", obj.cluster, kind, obj.ref, reason)


def _dependencies_ready(engine: Engine, obj: Obj) -> bool:
    waiting = [d for d in obj.depends_on if not d.ready()]
    if not waiting:
        return True
    dep = waiting[0]
    message = f"dependency '{dep.namespace}/{dep.name}' is not ready"
    if obj.conditions.get("Ready") is None or obj.conditions["Ready"].reason != (
        "DependencyNotReady"
    ):
        engine.record_event(
            obj,
            "info",
            "DependencyNotReady",
            "Dependencies do not meet ready condition, retrying in "
            + go_duration(DEPENDENCY_RETRY),
        )
    obj.set_cond("Ready", "False", "DependencyNotReady", message, engine.now)
    obj.drop_cond("Reconciling")
    engine.commit(obj)
    engine.schedule(obj, DEPENDENCY_RETRY)
    return False


def _start_apply(engine: Engine, obj: Obj) -> None:
    """First half of a Kustomization or HelmRelease run: dependencies, artifact, then
    ``Reconciling=True`` and ``Ready=Unknown`` until the run finishes."""
    if obj.busy or not _dependencies_ready(engine, obj):
        return
    source = obj.source
    if source is None or not source.artifact_rev:
        ref = f"{source.kind} '{source.ref}'" if source else "source"
        reason = "ArtifactFailed"
        message = f"{ref} is not ready, retrying in {go_duration(ARTIFACT_RETRY)}"
        obj.set_cond("Ready", "False", reason, message, engine.now)
        engine.commit(obj)
        engine.schedule(obj, ARTIFACT_RETRY)
        return
    if obj.kind == "HelmRelease":
        _start_release(engine, obj)
        return
    duration = engine.rng.uniform(0.4, 3.0)
    if obj.extra.get("wait"):
        duration += engine.rng.uniform(2.0, 25.0)
    if obj.fault == "health":
        duration = 180.0
    obj.set_cond("Reconciling", "True", "Progressing", "Reconciliation in progress", engine.now)
    obj.set_cond("Ready", "Unknown", "Progressing", "Reconciliation in progress", engine.now)
    engine.begin(obj, duration)


def finish(engine: Engine, obj: Obj) -> None:
    obj.busy = False
    was_ready = obj.ready()
    if obj.kind == "Kustomization":
        _finish_kustomization(engine, obj)
    elif obj.kind == "HelmRelease":
        _finish_release(engine, obj)
    elif obj.kind == "Canary":
        _canary_step(engine, obj)
        return
    engine.commit(obj)
    if obj.ready() != was_ready or obj.ready():
        for dependent in obj.dependents:
            if dependent.kind in ("Kustomization", "HelmRelease") and (
                obj in dependent.depends_on and not dependent.ready()
            ):
                engine.trigger(dependent)
            elif dependent.kind == "Canary" and obj.ready():
                engine.trigger(dependent, 1.0)
    if obj.interval > 0 and obj.due <= engine.now:
        engine.schedule(obj, obj.interval)


def _finish_kustomization(engine: Engine, obj: Obj) -> None:
    assert obj.source is not None
    rev = obj.source.artifact_rev
    changed = rev != obj.applied_rev
    recovered = obj.conditions.get("Ready") is None or obj.conditions["Ready"].reason != (
        "ReconciliationSucceeded"
    )
    obj.attempted_rev = rev
    obj.observed_generation = obj.generation
    obj.drop_cond("Reconciling")
    if obj.fault == "build":
        message = (
            "kustomize build failed: accumulating resources: accumulation err='accumulating "
            f"resources from 'deployment.yaml': open /tmp/kustomization-{obj.name}/deploy/"
            "production/deployment.yaml: no such file or directory'"
        )
        obj.set_cond("Ready", "False", "BuildFailed", message, engine.now)
        engine.record_event(obj, "error", "BuildFailed", message, rev)
        return
    obj.applied_rev = rev
    if obj.fault == "health":
        target = obj.extra.get("target_ns", obj.namespace)
        message = (
            f"health check failed after {go_duration(obj.last_duration)}: timeout waiting "
            f"for: [Deployment/{target}/{obj.name} status: 'InProgress']"
        )
        obj.set_cond("Ready", "False", "HealthCheckFailed", message, engine.now)
        obj.set_cond("Healthy", "False", "HealthCheckFailed", message, engine.now)
        records.record_ks_history(obj, rev, engine.now, "HealthCheckFailed")
        engine.record_event(obj, "error", "HealthCheckFailed", message, rev)
        return
    obj.set_cond("Ready", "True", "ReconciliationSucceeded", f"Applied revision: {rev}", engine.now)
    if obj.extra.get("wait"):
        message = f"Health check passed in {go_duration(obj.last_duration)}"
        obj.set_cond("Healthy", "True", "Succeeded", message, engine.now)
    records.record_ks_history(obj, rev, engine.now, "ReconciliationSucceeded")
    if changed or recovered:
        message = (
            f"Reconciliation finished in {go_duration(obj.last_duration)}, "
            f"next run in {go_duration(obj.interval)}"
        )
        engine.record_event(obj, "info", "ReconciliationSucceeded", message, rev)


# --- helm ---------------------------------------------------------------------------


def _released_ok(engine: Engine, obj: Obj, version: str, action: str, at: float) -> None:
    verb = action.capitalize()
    chart = obj.extra["chart"]
    release = f"{obj.namespace}/{obj.name}.v{obj.release_version}"
    message = f"Helm {action} succeeded for release {release} with chart {chart}@{version}"
    obj.set_cond("Released", "True", f"{verb}Succeeded", message, at)
    if obj.extra.get("test"):
        message = (
            f"Helm test succeeded for release {release} with chart {chart}@{version}: "
            "1 test hooks completed successfully"
        )
        obj.set_cond("TestSuccess", "True", "TestSucceeded", message, at)
        obj.set_cond("Ready", "True", "TestSucceeded", message, at)
    else:
        obj.set_cond("Ready", "True", f"{verb}Succeeded", message, at)
    obj.drop_cond("Reconciling")
    obj.drop_cond("Stalled")


def _start_release(engine: Engine, obj: Obj) -> None:
    version = records.chart_version(engine.seed, obj)
    deployed = next((h for h in obj.history if h["status"] == "deployed"), None)
    if version != obj.attempted_rev:
        obj.failures = obj.install_failures = obj.upgrade_failures = 0
        obj.drop_cond("Stalled")
    if "Stalled" in obj.conditions:
        return
    up_to_date = (
        deployed is not None
        and deployed["chartVersion"] == version
        and obj.observed_generation == obj.generation
        and obj.ready()
    )
    if up_to_date:
        return
    action = "upgrade" if deployed is not None else "install"
    obj.last_action = action
    message = f"Running '{action}' action with timeout of 5m0s"
    obj.set_cond("Reconciling", "True", "Progressing", message, engine.now)
    obj.set_cond("Ready", "Unknown", "Progressing", message, engine.now)
    duration = engine.rng.uniform(3.0, 25.0)
    if obj.fault in ("install", "upgrade"):
        duration = engine.rng.uniform(30.0, 60.0)
    engine.begin(obj, duration)


def _finish_release(engine: Engine, obj: Obj) -> None:
    version = records.chart_version(engine.seed, obj)
    action = obj.last_action or "install"
    verb = action.capitalize()
    chart = obj.extra["chart"]
    obj.attempted_rev = version
    obj.observed_generation = obj.generation
    obj.extra["attempted_generation"] = obj.generation
    obj.release_version += 1
    release = f"{obj.namespace}/{obj.name}.v{obj.release_version}"
    failed: str | None = None
    if obj.fault in ("install", "upgrade"):
        failed = f"{verb}Failed"
        message = (
            f"Helm {action} failed for release {release} with chart {chart}@{version}: "
            "context deadline exceeded"
        )
        obj.history.insert(
            0, records.release_entry(engine.seed, obj, version, "failed", engine.now, action)
        )
        obj.set_cond("Released", "False", failed, message, engine.now)
        obj.set_cond("Ready", "False", failed, message, engine.now)
    else:
        for entry in obj.history:
            if entry["status"] == "deployed":
                entry["status"] = "superseded"
        obj.history.insert(
            0, records.release_entry(engine.seed, obj, version, "deployed", engine.now, action)
        )
        _released_ok(engine, obj, version, action, engine.now)
        if obj.fault == "test":
            failed = "TestFailed"
            hook = next(iter(obj.history[0].get("testHooks", {"t": 0})))
            message = (
                f"Helm test failed for release {release} with chart {chart}@{version}: "
                f"1 error occurred:\n\t* pod {hook} failed"
            )
            if "testHooks" in obj.history[0]:
                obj.history[0]["testHooks"][hook]["phase"] = "Failed"
            obj.set_cond("TestSuccess", "False", "TestFailed", message, engine.now)
            obj.set_cond("Ready", "False", "TestFailed", message, engine.now)
    records.trim_release_history(obj.history)
    if failed is None:
        message = obj.conditions["Ready"].message
        engine.record_event(obj, "info", obj.conditions["Ready"].reason, message, version)
        return
    obj.failures += 1
    if action == "install":
        obj.install_failures += 1
        count = obj.install_failures
    else:
        obj.upgrade_failures += 1
        count = obj.upgrade_failures
    engine.record_event(obj, "error", failed, message, version)
    if count > int(obj.extra.get("retries", 3)):
        stalled = f"Failed to {action} after {count} attempt(s)"
        obj.set_cond("Stalled", "True", "RetriesExceeded", stalled, engine.now)
        obj.drop_cond("Reconciling")
        log.info("%s: HelmRelease %s stalled: %s", obj.cluster, obj.ref, stalled)
    else:
        obj.set_cond("Reconciling", "True", "ProgressingWithRetry", message, engine.now)
        engine.schedule(obj, HELM_RETRY)


# --- image automation and flagger ----------------------------------------------------


def _reconcile_policy(engine: Engine, obj: Obj) -> None:
    repo = obj.source
    if repo is None:
        return
    tag = records.latest_tag(repo)
    if not tag or tag == obj.applied_rev:
        return
    image = obj.extra["image"]
    message = f"Latest image tag for {image} updated from {obj.applied_rev} to {tag}"
    obj.extra["previous"] = obj.applied_rev
    obj.applied_rev = tag
    obj.set_cond("Ready", "True", "Succeeded", message, engine.now)
    engine.commit(obj)
    engine.record_event(obj, "info", "Succeeded", message)


def _reconcile_automation(engine: Engine, obj: Obj) -> None:
    git = obj.source
    policy: Obj = obj.extra["policy"]
    if git is None:
        return
    if obj.fault == "fetch":
        message = f"failed to clone '{git.ref}': remote: Permission to acme denied"
        obj.set_cond("Ready", "False", "GitOperationFailed", message, engine.now)
        engine.commit(obj)
        engine.record_event(obj, "error", "GitOperationFailed", message)
        return
    obj.artifact_time = engine.now
    obj.attempted_rev = git.artifact_rev
    if policy.applied_rev and policy.applied_rev != obj.extra.get("observed_tag"):
        obj.applied_rev = hexdigest(obj.cluster, obj.ref, "push", policy.applied_rev, length=40)
        obj.extra["push_time"] = engine.now
        obj.extra["observed_tag"] = policy.applied_rev
        message = f"pushed commit '{obj.applied_rev[:7]}' to branch 'main'"
        obj.set_cond("Ready", "True", "Succeeded", message, engine.now)
        engine.new_commit(git.kind, git.namespace, git.name, [git.cluster])
        engine.trigger(git, 2.0)
        engine.record_event(obj, "info", "Succeeded", message)
    else:
        obj.set_cond("Ready", "True", "Succeeded", "repository up-to-date", engine.now)
    engine.commit(obj)


def _reconcile_canary(engine: Engine, obj: Obj) -> None:
    release = obj.source
    if release is None or obj.busy:
        return
    deployed = next((h for h in release.history if h["status"] == "deployed"), None)
    if deployed is None or deployed["chartVersion"] == obj.attempted_rev:
        return
    obj.attempted_rev = deployed["chartVersion"]
    obj.extra.update(phase="Progressing", weight=10, failed_checks=0)
    obj.artifact_time = engine.now
    message = "New revision detected, progressing canary analysis."
    obj.set_cond("Promoted", "Unknown", "Progressing", message, engine.now)
    engine.begin(obj, CANARY_STEP)


def _canary_step(engine: Engine, obj: Obj) -> None:
    obj.artifact_time = engine.now
    if obj.fault == "analysis":
        obj.extra["failed_checks"] = int(obj.extra.get("failed_checks", 0)) + 1
        if obj.extra["failed_checks"] >= 5:
            obj.extra.update(phase="Failed", weight=0)
            message = "Canary analysis failed, Deployment scaled to zero."
            obj.set_cond("Promoted", "False", "Failed", message, engine.now)
            engine.commit(obj)
            log.info("%s: Canary %s failed its analysis", obj.cluster, obj.ref)
            return
    elif int(obj.extra.get("weight", 0)) >= 50:
        obj.extra.update(phase="Succeeded", weight=0)
        obj.applied_rev = obj.attempted_rev
        message = "Canary analysis completed successfully, promotion finished."
        obj.set_cond("Promoted", "True", "Succeeded", message, engine.now)
        engine.commit(obj)
        return
    else:
        obj.extra["weight"] = int(obj.extra.get("weight", 0)) + 10
    engine.begin(obj, CANARY_STEP)
