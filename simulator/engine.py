"""The scenario engine: the clock, the action queue and the operator's verbs for the fleet.

Objects reconcile on their interval; what a run does to each kind lives in
``simulator.controllers``. Faults, suspends, outages and rollouts are scheduled actions here.
Time is a number the caller moves (``run_until``), so a manual clock gives the same history for
the same seed, and a time-scaled clock just moves it from a task.
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

from simulator import controllers, records
from simulator.events import Severity, build_event
from simulator.fleet import build_cluster
from simulator.kinds import BY_KIND, KindInfo
from simulator.model import Obj, hexdigest, iso
from simulator.scenario import (
    FAULTS_BY_KIND,
    Fault,
    OutageMode,
    Scenario,
    ScenarioError,
    ScriptStep,
)
from simulator.status import render
from simulator.store import ClusterStore, Outage
from simulator.wire import encode

log = logging.getLogger("simulator.engine")

EventHook = Callable[[str, dict[str, Any]], None]

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
                controllers.reconcile(self, obj)
        elif action == _FINISH:
            obj, token = target
            if obj.managed and obj.busy and obj.extra.get("token") == token:
                controllers.finish(self, obj)
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
            controllers.settle_initial(self, obj, rng)
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

    # --- revisions ----------------------------------------------------------------------

    def head(self, obj: Obj) -> int:
        """The source's upstream commit count, the same in every cluster."""
        key = obj.key
        if key not in self.heads:
            self.heads[key] = 2 + int(hexdigest(self.seed, *key, length=40)[:8], 16) % 39
        return self.heads[key]

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

    def record_event(
        self, obj: Obj, severity: Severity, reason: str, message: str, revision: str = ""
    ) -> None:
        """Send a Flux event, as the kind's controller would post it to notification-controller."""
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

    # --- runs that take time -----------------------------------------------------------

    def begin(self, obj: Obj, duration: float) -> None:
        """Mark a run in progress; ``controllers.finish`` ends it after ``duration``."""
        obj.busy = True
        obj.last_duration = duration
        token = self.seq + 1
        obj.extra["token"] = token
        self.commit(obj)
        self._push(self._after(duration), _FINISH, (obj, token))

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
        head = max(self.head(found[0]), *(o.upstream for o in found)) + 1
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
