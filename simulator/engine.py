"""The scenario engine: a discrete-event simulation of Flux's controllers across the fleet.

Each object reconciles on its interval; sources store new artifacts when commits land upstream
and wake their consumers; Kustomizations and HelmReleases go through ``Reconciling`` and
``Ready=Unknown`` before settling; faults, suspends, outages and rollouts are scheduled
actions. Time is a number the caller moves (``run_until``), so a manual clock gives the same
history for the same seed, and a time-scaled clock just moves it from a task.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from simulator import records
from simulator.events import Severity, build_event
from simulator.fleet import build_cluster
from simulator.kinds import BY_KIND, KindInfo
from simulator.model import Obj, go_duration, hexdigest, iso
from simulator.scenario import (
    FAULTS_BY_KIND,
    Fault,
    OutageMode,
    Scenario,
    ScenarioError,
    ScriptStep,
)
from simulator.status import SOURCE_KINDS, render
from simulator.store import ClusterStore, Outage
from simulator.wire import encode

log = logging.getLogger("simulator.engine")

EventHook = Callable[[str, dict[str, Any]], None]

DEPENDENCY_RETRY = 30.0  # kustomize/helm-controller --requeue-dependency default
ARTIFACT_RETRY = 30.0
HELM_RETRY = 20.0
CANARY_STEP = 30.0

# Action codes of the queue, cheaper than closures for 50,000 objects.
_RECONCILE, _FINISH, _LAND, _SCRIPT, _FAULT, _HEAL, _OUTAGE_END, _COMMITS, _OUTAGES = range(9)


@dataclass(order=True, slots=True)
class _Item:
    at: float
    seq: int
    action: int
    target: Any


class Engine:
    """Owns every object's state and writes each change into its cluster's store."""

    def __init__(
        self,
        scenario: Scenario,
        stores: dict[str, ClusterStore],
        start: float,
        on_event: EventHook | None = None,
        pace: float = 1.0,
    ) -> None:
        self.scenario = scenario
        # ``pace`` > 1 runs every interval, duration and rate that many times faster while the
        # clock itself keeps real time, so timestamps stay comparable with the wall clock.
        self.pace = pace
        self.seed = scenario.seed
        self.stores = stores
        self.start = start
        self.now = start
        self.on_event = on_event
        self.queue: list[_Item] = []
        self.seq = 0
        self.objs: dict[str, dict[tuple[str, str, str], Obj]] = {}
        self.rng = random.Random(f"{scenario.seed}/engine")
        # Upstream heads (commit counts) of each source, shared by every cluster: the same
        # repository gives the same revision everywhere, whichever cluster sees it first.
        self.heads: dict[tuple[str, str, str], int] = {}
        self._commit_targets: list[tuple[str, str, str]] | None = None
        self.changes = 0  # status writes, for the churn figures
        self.faults_injected = 0
        for cluster in scenario.clusters:
            self._bootstrap(cluster.name, build_cluster(scenario.seed, cluster, start))
        self.object_count = sum(len(o) for o in self.objs.values())
        for index, step in enumerate(scenario.script):
            self._check_step(index, step)
            self._push(start + step.at / self.pace, _SCRIPT, step)
        if scenario.faults.per_hour > 0:
            self._schedule_random_fault()
        if scenario.commits.every > 0:
            self._push(start + scenario.commits.every / self.pace, _COMMITS, None)
        if scenario.outages.per_hour > 0:
            self._schedule_random_outage()

    # --- queue --------------------------------------------------------------------------

    def _push(self, at: float, action: int, target: Any) -> None:
        self.seq += 1
        heapq.heappush(self.queue, _Item(at, self.seq, action, target))

    def _after(self, delay: float) -> float:
        return self.now + delay / self.pace

    def schedule(self, obj: Obj, delay: float) -> None:
        """(Re)schedule the object's next run; an earlier pending run is superseded."""
        obj.due = self._after(delay)
        self._push(obj.due, _RECONCILE, obj)

    def trigger(self, obj: Obj, delay: float | None = None) -> None:
        """Wake an object soon, as a watch on its source or dependency would."""
        if delay is None:
            delay = self.rng.uniform(1.0, 5.0)
        if obj.due > self._after(delay) or obj.due <= self.now:
            self.schedule(obj, delay)

    def run_until(self, target: float, budget: int | None = None) -> bool:
        """Process every action due up to ``target``; False if ``budget`` ran out first."""
        done = 0
        while self.queue and self.queue[0].at <= target:
            if budget is not None and done >= budget:
                return False
            item = heapq.heappop(self.queue)
            self.now = max(self.now, item.at)
            self._dispatch(item)
            done += 1
        self.now = max(self.now, target)
        return True

    def _dispatch(self, item: _Item) -> None:
        action, target = item.action, item.target
        if action == _RECONCILE:
            obj: Obj = target
            if obj.due == item.at and obj.managed:
                self._reconcile(obj)
        elif action == _FINISH:
            obj, token = target
            if obj.managed and obj.busy and obj.extra.get("token") == token:
                self._finish(obj)
        elif action == _LAND:
            obj, head = target
            obj.upstream = max(obj.upstream, head)
            if obj.kind == "ImageRepository":
                self.trigger(obj)
        elif action == _SCRIPT:
            self._run_step(target)
        elif action == _FAULT:
            self._random_fault()
        elif action == _HEAL:
            obj, fault = target
            if obj.fault == fault:
                self.heal(obj)
        elif action == _OUTAGE_END:
            self.set_outage(target, None)
        elif action == _COMMITS:
            self._random_commit()
        elif action == _OUTAGES:
            self._random_outage()

    # --- bootstrap ----------------------------------------------------------------------

    def _bootstrap(self, cluster: str, seeded: Iterable[Any]) -> None:
        store = self.stores[cluster]
        rng = random.Random(f"{self.seed}/{cluster}/bootstrap")
        objs = self.objs.setdefault(cluster, {})
        for item in seeded:
            obj: Obj = item.obj
            meta = item.meta
            meta["creationTimestamp"] = iso(meta["creationTimestamp"])
            if obj.kind == "Kustomization":
                obj.extra["target_ns"] = item.spec.get("targetNamespace", obj.namespace)
            self._settle_initial(obj, rng)
            objs[obj.key] = obj
            info = BY_KIND[obj.kind]
            obj.stored = store.put(
                info,
                obj.namespace,
                obj.name,
                meta,
                encode(item.spec),
                self._status(obj, store),
                initial=True,
            )
            if obj.interval > 0:
                obj.due = self.start + rng.uniform(1.0, obj.interval) / self.pace
                self._push(obj.due, _RECONCILE, obj)

    def _settle_initial(self, obj: Obj, rng: random.Random) -> None:
        """A lived-in, healthy starting state: artifacts stored hours ago, releases at their
        second or later version, histories with a previous revision."""
        kind = obj.kind
        ago = self.start - rng.uniform(600.0, 3 * 86400.0)
        if kind in SOURCE_KINDS or kind == "ImageRepository":
            obj.upstream = self._head(obj)
            if kind == "HelmChart" and obj.source is not None:
                obj.upstream = obj.source.upstream
                ago = max(ago, obj.source.artifact_time + 5)
            self._store_artifact(obj, ago, rng)
            return
        source = obj.source
        if kind == "Kustomization" and source is not None:
            rev = source.artifact_rev
            first = source.artifact_time + rng.uniform(2.0, 30.0)
            last = self.start - rng.uniform(0.0, obj.interval)
            duration = rng.uniform(0.3, 4.0)
            obj.applied_rev = obj.attempted_rev = rev
            prev = records.source_revision(self.seed, source, source.upstream - 1)
            obj.history = [
                records.ks_history_entry(
                    obj, rev, "ReconciliationSucceeded", first, last, duration
                ),
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
            version = records.chart_version(self.seed, obj)
            first = source.artifact_time + rng.uniform(5.0, 60.0)
            obj.release_version = rng.randint(1, 12)
            previous = records.release_entry(
                self.seed,
                obj,
                records.chart_version(self.seed, obj, -1),
                "superseded",
                first - 86400,
                "upgrade",
            )
            previous["version"] = obj.release_version
            obj.release_version += 1
            current = records.release_entry(self.seed, obj, version, "deployed", first, "upgrade")
            obj.history = [current, previous]
            obj.attempted_rev = version
            obj.last_action = "upgrade"
            obj.last_duration = rng.uniform(2.0, 30.0)
            self._released_ok(obj, version, "upgrade", first)
        elif kind == "ImagePolicy" and source is not None:
            obj.applied_rev = records.latest_tag(source)
            obj.extra["previous"] = f"1.{max(source.upstream - 1, 0)}.0"
            message = f"Latest image tag for {obj.extra['image']} resolved to {obj.applied_rev}"
            obj.set_cond("Ready", "True", "Succeeded", message, source.artifact_time)
        elif kind == "ImageUpdateAutomation" and source is not None:
            policy: Obj = obj.extra["policy"]
            obj.artifact_time = self.start - rng.uniform(0.0, obj.interval)
            obj.applied_rev = hexdigest(obj.cluster, obj.ref, "push", policy.applied_rev, length=40)
            obj.extra["push_time"] = ago
            obj.extra["observed_tag"] = policy.applied_rev
            obj.attempted_rev = source.artifact_rev
            obj.set_cond("Ready", "True", "Succeeded", "repository up-to-date", ago)
        elif kind == "Receiver":
            path = "/hook/" + hexdigest("token", obj.name, obj.namespace)
            obj.set_cond(
                "Ready", "True", "Succeeded", f"Receiver initialized for path: {path}", ago
            )
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

    # --- revisions ----------------------------------------------------------------------

    def _head(self, obj: Obj) -> int:
        key = obj.key
        if key not in self.heads:
            self.heads[key] = 2 + int(hexdigest(self.seed, *key, length=40)[:8], 16) % 39
        return self.heads[key]

    def _store_artifact(self, obj: Obj, at: float, rng: random.Random | None = None) -> None:
        rng = rng or self.rng
        obj.artifact_rev = records.source_revision(self.seed, obj, obj.upstream)
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

    # --- writing ------------------------------------------------------------------------

    def _status(self, obj: Obj, store: ClusterStore) -> bytes | None:
        status = render(obj, store.profile, {"targetNamespace": obj.extra.get("target_ns")})
        return None if status is None else encode(status)

    def commit(self, obj: Obj) -> None:
        """Write the object's rendered status into its store: one MODIFIED event."""
        if obj.stored is None or not obj.managed:
            return
        store = self.stores[obj.cluster]
        status = self._status(obj, store)
        if status is None or status == obj.stored.status:
            return
        store.set_status(obj.stored, status)
        self.changes += 1

    def _event(
        self, obj: Obj, severity: Severity, reason: str, message: str, revision: str = ""
    ) -> None:
        if self.on_event is None or obj.stored is None:
            return
        info: KindInfo = BY_KIND[obj.kind]
        store = self.stores[obj.cluster]
        metadata = {"cluster": obj.cluster}
        if revision:
            metadata["revision"] = revision
        if obj.kind == "Kustomization" and severity == "info" and reason != "Progressing":
            metadata["commit_status"] = "update"
        instance = f"{info.controller}-{hexdigest(obj.cluster, info.controller, length=10)[:9]}-"
        instance += hexdigest(obj.cluster, info.controller, "pod", length=10)[:5]
        event = build_event(
            api_version=info.api_version(store.profile),
            kind=obj.kind,
            namespace=obj.namespace,
            name=obj.name,
            uid=str(obj.stored.meta.get("uid", "")),
            resource_version=str(obj.stored.rv),
            severity=severity,
            timestamp=iso(self.now),
            message=message,
            reason=reason,
            metadata=metadata,
            controller=info.controller,
            instance=instance,
        )
        self.on_event(obj.cluster, event)

    # --- reconcilers --------------------------------------------------------------------

    def _reconcile(self, obj: Obj) -> None:
        if obj.suspended:
            self.schedule(obj, obj.interval)
            return
        requested = obj.extra.get("requested_at")
        handled = requested is not None and requested != obj.extra.get("handled_at")
        if handled:
            obj.extra["handled_at"] = requested
        kind = obj.kind
        if kind in SOURCE_KINDS or kind == "ImageRepository":
            self._reconcile_source(obj)
        elif kind in ("Kustomization", "HelmRelease"):
            self._start_apply(obj)
        elif kind == "ImagePolicy":
            self._reconcile_policy(obj)
        elif kind == "ImageUpdateAutomation":
            self._reconcile_automation(obj)
        elif kind == "Canary":
            self._reconcile_canary(obj)
        if handled:
            self.commit(obj)  # lastHandledReconcileAt, even when nothing else changed
        if obj.interval > 0 and obj.due <= self.now and not obj.busy:
            self.schedule(obj, obj.interval)

    def _reconcile_source(self, obj: Obj) -> None:
        if obj.kind == "HelmChart":
            repo = obj.source
            if repo is None or not repo.artifact_rev:
                return
            obj.upstream = repo.upstream
        if obj.fault == "fetch":
            self._fail_source(obj)
            return
        changed = records.source_revision(self.seed, obj, obj.upstream) != obj.artifact_rev
        recovered = not obj.ready()
        if not (changed or recovered or obj.kind == "ImageRepository"):
            return
        self._store_artifact(obj, self.now)
        self.commit(obj)
        if changed or recovered:
            reason = "NewArtifact" if changed else "Succeeded"
            message = obj.conditions["Ready"].message
            self._event(obj, "info", reason, message, obj.artifact_rev)
        if changed:
            for dependent in obj.dependents:
                self.trigger(dependent)

    def _fail_source(self, obj: Obj) -> None:
        kind = obj.kind
        reason, message = records.fetch_failure(obj)
        was_failing = "FetchFailed" in obj.conditions or (
            kind == "ImageRepository" and not obj.ready()
        )
        obj.set_cond("Ready", "False", reason, message, self.now)
        if kind != "ImageRepository":
            obj.set_cond("FetchFailed", "True", reason, message, self.now)
            obj.set_cond(
                "Reconciling",
                "True",
                "ProgressingWithRetry",
                f"building artifact: new upstream revision '{obj.artifact_rev}'"
                if obj.artifact_rev
                else "building artifact",
                self.now,
            )
        self.commit(obj)
        self._event(obj, "error", reason, message, obj.artifact_rev)
        if not was_failing:
            log.info("%s: %s %s failed: %s", obj.cluster, kind, obj.ref, reason)

    def _dependencies_ready(self, obj: Obj) -> bool:
        waiting = [d for d in obj.depends_on if not d.ready()]
        if not waiting:
            return True
        dep = waiting[0]
        message = f"dependency '{dep.namespace}/{dep.name}' is not ready"
        if obj.conditions.get("Ready") is None or obj.conditions["Ready"].reason != (
            "DependencyNotReady"
        ):
            self._event(
                obj,
                "info",
                "DependencyNotReady",
                "Dependencies do not meet ready condition, retrying in "
                + go_duration(DEPENDENCY_RETRY),
            )
        obj.set_cond("Ready", "False", "DependencyNotReady", message, self.now)
        obj.drop_cond("Reconciling")
        self.commit(obj)
        self.schedule(obj, DEPENDENCY_RETRY)
        return False

    def _start_apply(self, obj: Obj) -> None:
        """First half of a Kustomization or HelmRelease run: dependencies, artifact, then
        ``Reconciling=True`` and ``Ready=Unknown`` until the run finishes."""
        if obj.busy or not self._dependencies_ready(obj):
            return
        source = obj.source
        if source is None or not source.artifact_rev:
            ref = f"{source.kind} '{source.ref}'" if source else "source"
            reason = "ArtifactFailed"
            message = f"{ref} is not ready, retrying in {go_duration(ARTIFACT_RETRY)}"
            obj.set_cond("Ready", "False", reason, message, self.now)
            self.commit(obj)
            self.schedule(obj, ARTIFACT_RETRY)
            return
        if obj.kind == "HelmRelease":
            self._start_release(obj)
            return
        duration = self.rng.uniform(0.4, 3.0)
        if obj.extra.get("wait"):
            duration += self.rng.uniform(2.0, 25.0)
        if obj.fault == "health":
            duration = 180.0
        obj.set_cond("Reconciling", "True", "Progressing", "Reconciliation in progress", self.now)
        obj.set_cond("Ready", "Unknown", "Progressing", "Reconciliation in progress", self.now)
        self._begin(obj, duration)

    def _begin(self, obj: Obj, duration: float) -> None:
        obj.busy = True
        obj.last_duration = duration
        token = self.seq + 1
        obj.extra["token"] = token
        self.commit(obj)
        self._push(self._after(duration), _FINISH, (obj, token))

    def _finish(self, obj: Obj) -> None:
        obj.busy = False
        was_ready = obj.ready()
        if obj.kind == "Kustomization":
            self._finish_kustomization(obj)
        elif obj.kind == "HelmRelease":
            self._finish_release(obj)
        elif obj.kind == "Canary":
            self._canary_step(obj)
            return
        self.commit(obj)
        if obj.ready() != was_ready or obj.ready():
            for dependent in obj.dependents:
                if dependent.kind in ("Kustomization", "HelmRelease") and (
                    obj in dependent.depends_on and not dependent.ready()
                ):
                    self.trigger(dependent)
                elif dependent.kind == "Canary" and obj.ready():
                    self.trigger(dependent, 1.0)
        if obj.interval > 0 and obj.due <= self.now:
            self.schedule(obj, obj.interval)

    def _finish_kustomization(self, obj: Obj) -> None:
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
            obj.set_cond("Ready", "False", "BuildFailed", message, self.now)
            self._event(obj, "error", "BuildFailed", message, rev)
            return
        obj.applied_rev = rev
        if obj.fault == "health":
            target = obj.extra.get("target_ns", obj.namespace)
            message = (
                f"health check failed after {go_duration(obj.last_duration)}: timeout waiting "
                f"for: [Deployment/{target}/{obj.name} status: 'InProgress']"
            )
            obj.set_cond("Ready", "False", "HealthCheckFailed", message, self.now)
            obj.set_cond("Healthy", "False", "HealthCheckFailed", message, self.now)
            records.record_ks_history(obj, rev, self.now, "HealthCheckFailed")
            self._event(obj, "error", "HealthCheckFailed", message, rev)
            return
        obj.set_cond(
            "Ready", "True", "ReconciliationSucceeded", f"Applied revision: {rev}", self.now
        )
        if obj.extra.get("wait"):
            message = f"Health check passed in {go_duration(obj.last_duration)}"
            obj.set_cond("Healthy", "True", "Succeeded", message, self.now)
        records.record_ks_history(obj, rev, self.now, "ReconciliationSucceeded")
        if changed or recovered:
            message = (
                f"Reconciliation finished in {go_duration(obj.last_duration)}, "
                f"next run in {go_duration(obj.interval)}"
            )
            self._event(obj, "info", "ReconciliationSucceeded", message, rev)

    # --- helm ---------------------------------------------------------------------------

    def _released_ok(self, obj: Obj, version: str, action: str, at: float) -> None:
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

    def _start_release(self, obj: Obj) -> None:
        version = records.chart_version(self.seed, obj)
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
        obj.set_cond("Reconciling", "True", "Progressing", message, self.now)
        obj.set_cond("Ready", "Unknown", "Progressing", message, self.now)
        duration = self.rng.uniform(3.0, 25.0)
        if obj.fault in ("install", "upgrade"):
            duration = self.rng.uniform(30.0, 60.0)
        self._begin(obj, duration)

    def _finish_release(self, obj: Obj) -> None:
        version = records.chart_version(self.seed, obj)
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
                0, records.release_entry(self.seed, obj, version, "failed", self.now, action)
            )
            obj.set_cond("Released", "False", failed, message, self.now)
            obj.set_cond("Ready", "False", failed, message, self.now)
        else:
            for entry in obj.history:
                if entry["status"] == "deployed":
                    entry["status"] = "superseded"
            obj.history.insert(
                0, records.release_entry(self.seed, obj, version, "deployed", self.now, action)
            )
            self._released_ok(obj, version, action, self.now)
            if obj.fault == "test":
                failed = "TestFailed"
                hook = next(iter(obj.history[0].get("testHooks", {"t": 0})))
                message = (
                    f"Helm test failed for release {release} with chart {chart}@{version}: "
                    f"1 error occurred:\n\t* pod {hook} failed"
                )
                if "testHooks" in obj.history[0]:
                    obj.history[0]["testHooks"][hook]["phase"] = "Failed"
                obj.set_cond("TestSuccess", "False", "TestFailed", message, self.now)
                obj.set_cond("Ready", "False", "TestFailed", message, self.now)
        records.trim_release_history(obj.history)
        if failed is None:
            message = obj.conditions["Ready"].message
            self._event(obj, "info", obj.conditions["Ready"].reason, message, version)
            return
        obj.failures += 1
        if action == "install":
            obj.install_failures += 1
            count = obj.install_failures
        else:
            obj.upgrade_failures += 1
            count = obj.upgrade_failures
        self._event(obj, "error", failed, message, version)
        if count > int(obj.extra.get("retries", 3)):
            stalled = f"Failed to {action} after {count} attempt(s)"
            obj.set_cond("Stalled", "True", "RetriesExceeded", stalled, self.now)
            obj.drop_cond("Reconciling")
            log.info("%s: HelmRelease %s stalled: %s", obj.cluster, obj.ref, stalled)
        else:
            obj.set_cond("Reconciling", "True", "ProgressingWithRetry", message, self.now)
            self.schedule(obj, HELM_RETRY)

    # --- image automation and flagger ----------------------------------------------------

    def _reconcile_policy(self, obj: Obj) -> None:
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
        obj.set_cond("Ready", "True", "Succeeded", message, self.now)
        self.commit(obj)
        self._event(obj, "info", "Succeeded", message)

    def _reconcile_automation(self, obj: Obj) -> None:
        git = obj.source
        policy: Obj = obj.extra["policy"]
        if git is None:
            return
        if obj.fault == "fetch":
            message = f"failed to clone '{git.ref}': remote: Permission to acme denied"
            obj.set_cond("Ready", "False", "GitOperationFailed", message, self.now)
            self.commit(obj)
            self._event(obj, "error", "GitOperationFailed", message)
            return
        obj.artifact_time = self.now
        obj.attempted_rev = git.artifact_rev
        if policy.applied_rev and policy.applied_rev != obj.extra.get("observed_tag"):
            obj.applied_rev = hexdigest(obj.cluster, obj.ref, "push", policy.applied_rev, length=40)
            obj.extra["push_time"] = self.now
            obj.extra["observed_tag"] = policy.applied_rev
            message = f"pushed commit '{obj.applied_rev[:7]}' to branch 'main'"
            obj.set_cond("Ready", "True", "Succeeded", message, self.now)
            self.new_commit(git.kind, git.namespace, git.name, [git.cluster])
            self.trigger(git, 2.0)
            self._event(obj, "info", "Succeeded", message)
        else:
            obj.set_cond("Ready", "True", "Succeeded", "repository up-to-date", self.now)
        self.commit(obj)

    def _reconcile_canary(self, obj: Obj) -> None:
        release = obj.source
        if release is None or obj.busy:
            return
        deployed = next((h for h in release.history if h["status"] == "deployed"), None)
        if deployed is None or deployed["chartVersion"] == obj.attempted_rev:
            return
        obj.attempted_rev = deployed["chartVersion"]
        obj.extra.update(phase="Progressing", weight=10, failed_checks=0)
        obj.artifact_time = self.now
        message = "New revision detected, progressing canary analysis."
        obj.set_cond("Promoted", "Unknown", "Progressing", message, self.now)
        self._begin(obj, CANARY_STEP)

    def _canary_step(self, obj: Obj) -> None:
        obj.artifact_time = self.now
        if obj.fault == "analysis":
            obj.extra["failed_checks"] = int(obj.extra.get("failed_checks", 0)) + 1
            if obj.extra["failed_checks"] >= 5:
                obj.extra.update(phase="Failed", weight=0)
                message = "Canary analysis failed, Deployment scaled to zero."
                obj.set_cond("Promoted", "False", "Failed", message, self.now)
                self.commit(obj)
                log.info("%s: Canary %s failed its analysis", obj.cluster, obj.ref)
                return
        elif int(obj.extra.get("weight", 0)) >= 50:
            obj.extra.update(phase="Succeeded", weight=0)
            obj.applied_rev = obj.attempted_rev
            message = "Canary analysis completed successfully, promotion finished."
            obj.set_cond("Promoted", "True", "Succeeded", message, self.now)
            self.commit(obj)
            return
        else:
            obj.extra["weight"] = int(obj.extra.get("weight", 0)) + 10
        self._begin(obj, CANARY_STEP)

    # --- verbs (control API and script) --------------------------------------------------

    def find(self, cluster: str, kind: str, namespace: str, name: str) -> Obj:
        try:
            return self.objs[cluster][(kind, namespace, name)]
        except KeyError:
            raise KeyError(f"{cluster}: no {kind} {namespace}/{name}") from None

    def fail(self, obj: Obj, fault: Fault) -> None:
        """Inject a fault; it lasts until ``heal``. Helm faults arrive with a values change
        (a new generation), as a bad change would; an ``install`` fault re-creates the release."""
        allowed = FAULTS_BY_KIND.get(obj.kind, ())
        if fault not in allowed:
            raise ValueError(f"{obj.kind} cannot suffer a {fault!r} fault (allowed: {allowed})")
        obj.fault = fault
        self.faults_injected += 1
        if obj.kind == "HelmRelease":
            if fault == "install":
                obj.history = []
            self._bump_generation(obj)
        if obj.kind == "Canary" and not obj.busy:
            obj.attempted_rev = ""  # analyse the current revision again, and fail it
        log.info("%s: fault %s on %s %s", obj.cluster, fault, obj.kind, obj.ref)
        self.trigger(obj, 1.0)

    def request_reconcile(self, obj: Obj) -> None:
        """What ``flux reconcile`` does: stamp ``reconcile.fluxcd.io/requestedAt`` (RFC 3339
        with sub-seconds) on the object; the next run echoes it in lastHandledReconcileAt."""
        stamp = dt.datetime.fromtimestamp(self.now, dt.UTC).isoformat()
        obj.extra["requested_at"] = stamp
        if obj.stored is not None and obj.managed:
            annotations = dict(obj.stored.meta.get("annotations") or {})
            annotations["reconcile.fluxcd.io/requestedAt"] = stamp
            store = self.stores[obj.cluster]
            store.set_status(obj.stored, obj.stored.status, {"annotations": annotations})
        self.trigger(obj, 1.0)

    def heal(self, obj: Obj) -> None:
        """Clear a fault and reconcile now, like a fix followed by ``flux reconcile``; a
        HelmRelease also gets its failure counters reset (``reconcile.fluxcd.io/resetAt``)."""
        obj.fault = None
        if obj.kind == "HelmRelease":
            obj.failures = obj.install_failures = obj.upgrade_failures = 0
            obj.drop_cond("Stalled")
            self._bump_generation(obj)
        if obj.kind == "Canary" and obj.extra.get("phase") == "Failed":
            obj.attempted_rev = ""
        if obj.kind == "Canary":
            self.trigger(obj, 1.0)
        else:
            self.request_reconcile(obj)

    def _bump_generation(self, obj: Obj, spec_changes: dict[str, Any] | None = None) -> None:
        obj.generation += 1
        if obj.stored is None or not obj.managed:
            return
        spec = json.loads(obj.stored.spec)
        if spec_changes is None and obj.kind == "HelmRelease":
            values = spec.setdefault("values", {})
            values["revision"] = obj.generation
        spec.update(spec_changes or {})
        for key, value in (spec_changes or {}).items():
            if value is None:
                spec.pop(key, None)
        self.stores[obj.cluster].set_spec(obj.stored, encode(spec))

    def suspend(self, obj: Obj) -> None:
        obj.suspended = True
        self._bump_generation(obj, {"suspend": True})

    def resume(self, obj: Obj) -> None:
        obj.suspended = False
        self._bump_generation(obj, {"suspend": None})
        obj.observed_generation = obj.generation
        self.trigger(obj, 1.0)

    def new_commit(
        self, kind: str, namespace: str, name: str, clusters: list[str] | None = None
    ) -> str:
        """Land a new upstream revision on a source, cluster after cluster with a stagger;
        each source then picks it up on its own interval. Returns the new revision."""
        targets = clusters if clusters is not None else sorted(self.objs)
        found = [
            obj
            for cluster in targets
            if (obj := self.objs.get(cluster, {}).get((kind, namespace, name))) is not None
        ]
        if not found:
            raise KeyError(f"no {kind} {namespace}/{name} in {', '.join(targets)}")
        head = max(self._head(found[0]), *(o.upstream for o in found)) + 1
        self.heads[found[0].key] = head
        at = self.now
        lo, hi = self.scenario.commits.stagger
        for obj in found:
            self._push(at, _LAND, (obj, head))
            at += self.rng.uniform(lo, hi) / self.pace
        return records.source_revision(self.seed, found[0], head)

    def set_outage(self, cluster: str, mode: Outage | None) -> None:
        store = self.stores[cluster]
        if store.outage != mode:
            log.info("%s: API %s", cluster, f"outage ({mode})" if mode else "back")
        store.set_outage(mode)

    def _check_step(self, index: int, step: ScriptStep) -> None:
        """A scripted step must name an object that exists (in its cluster, or in one cluster
        at least when it has none): a typo would otherwise script nothing, silently."""
        if step.action in ("outage", "restore"):
            return
        clusters = [step.cluster] if step.cluster else sorted(self.objs)
        key = (step.kind, step.namespace, step.name)
        if not any(key in self.objs[c] for c in clusters):
            where = self.scenario.source or self.scenario.name
            scope = f"cluster {step.cluster}" if step.cluster else "any cluster"
            raise ScenarioError(
                f"{where}: script[{index}]: no {step.kind} {step.namespace}/{step.name} in {scope}"
            )

    def _run_step(self, step: ScriptStep) -> None:
        clusters = [step.cluster] if step.cluster else sorted(self.objs)
        if step.action == "commit":
            self.new_commit(step.kind, step.namespace, step.name, clusters)
            return
        for cluster in clusters:
            if step.action in ("outage", "restore"):
                mode: OutageMode | None = step.mode if step.action == "outage" else None
                self.set_outage(cluster, mode)
                continue
            obj = self.objs[cluster].get((step.kind, step.namespace, step.name))
            if obj is None:
                continue
            if step.action == "fail" and step.fault is not None:
                self.fail(obj, step.fault)
            elif step.action == "heal":
                self.heal(obj)
            elif step.action == "suspend":
                self.suspend(obj)
            elif step.action == "resume":
                self.resume(obj)
            elif step.action == "reconcile":
                self.request_reconcile(obj)

    # --- randomness ---------------------------------------------------------------------

    def _schedule_random_fault(self) -> None:
        rate = self.scenario.faults.per_hour * self.object_count / 1000.0 / 3600.0
        self._push(self._after(self.rng.expovariate(rate)), _FAULT, None)

    def _random_fault(self) -> None:
        faults = self.scenario.faults
        cluster = self.rng.choice(sorted(self.objs))
        candidates = [
            o
            for o in self.objs[cluster].values()
            if o.fault is None
            and o.managed
            and any(faults.weights.get(f, 0) > 0 for f in FAULTS_BY_KIND.get(o.kind, ()))
        ]
        if candidates:
            obj = self.rng.choice(candidates)
            options = [f for f in FAULTS_BY_KIND[obj.kind] if faults.weights.get(f, 0) > 0]
            weights = [faults.weights[f] for f in options]
            fault = self.rng.choices(options, weights)[0]
            self.fail(obj, fault)
            self._push(self._after(self.rng.uniform(*faults.heal_after)), _HEAL, (obj, fault))
        self._schedule_random_fault()

    def _random_commit(self) -> None:
        if self._commit_targets is None:
            self._commit_targets = sorted(
                {
                    k
                    for objs in self.objs.values()
                    for k in objs
                    if k[0] in ("GitRepository", "OCIRepository", "HelmRepository", "Bucket")
                }
            )
        names = self._commit_targets
        if names:
            self.new_commit(*self.rng.choice(names))
        self._push(self._after(self.scenario.commits.every), _COMMITS, None)

    def _schedule_random_outage(self) -> None:
        rate = self.scenario.outages.per_hour / 3600.0
        self._push(self._after(self.rng.expovariate(rate)), _OUTAGES, None)

    def _random_outage(self) -> None:
        outages = self.scenario.outages
        cluster = self.rng.choice(sorted(self.objs))
        if self.stores[cluster].outage is None and outages.modes:
            self.set_outage(cluster, self.rng.choice(outages.modes))
            self._push(self._after(self.rng.uniform(*outages.duration)), _OUTAGE_END, cluster)
        self._schedule_random_outage()
