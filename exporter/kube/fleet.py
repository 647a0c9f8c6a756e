"""All clusters on one event loop: one runner per cluster, one watch task per served kind.

A ``ClusterRunner`` connects, discovers the served Flux kinds (again every few minutes, so a CRD
installed later is picked up), keeps one ``infinite_watch`` task per kind and reports the
cluster's state to the sink whenever it changes, with one log line. ``Fleet`` owns the runners:
it applies sharding, rescans the kubeconfig directory, and logs the initial-sync progress of large
fleets (clusters synced / total, objects so far), never a line per object.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from exporter.kinds import KINDS_BY_NAME
from exporter.kube.backoff import backoff_delay
from exporter.kube.client import ApiError, ConnectionFailed, KubeClient, limit_tls_read_buffers
from exporter.kube.clusters import (
    ClusterSourceError,
    ClusterSpec,
    connect,
    scan_kubeconfig_dir,
)
from exporter.kube.discovery import discover
from exporter.kube.health import WatchHealth
from exporter.kube.sharding import ordinal_from_hostname, owns
from exporter.kube.watching import Watcher, WatchTarget, infinite_watch
from exporter.settings import ExporterSettings
from exporter.sink import ClusterState, FluxObjectSink

log = logging.getLogger(__name__)

AUTH_FAILURE_CODES = frozenset({401, 403})
"""Answers that mean the credentials (or their RBAC) are refused, not that the API is down."""

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """Which clusters and objects this replica watches; a pure, exact split by stable hash."""

    shard: int = 0
    total_shards: int = 1
    by: Literal["cluster", "object"] = "cluster"

    def owns_cluster(self, name: str) -> bool:
        return self.by == "object" or owns(name, self.shard, self.total_shards)

    def owns_object(self, uid: str) -> bool:
        return self.by == "cluster" or owns(uid, self.shard, self.total_shards)

    @property
    def object_filter(self) -> Callable[[str], bool] | None:
        if self.by == "object" and self.total_shards > 1:
            return self.owns_object
        return None


def plan_shards(settings: ExporterSettings, static_count: int, hostname: str) -> ShardPlan:
    """The shard from the settings or, for N > 1 without one, the StatefulSet ordinal."""
    shard = settings.shard
    if shard is None:
        shard = 0
        if settings.total_shards > 1:
            ordinal = ordinal_from_hostname(hostname)
            if ordinal is None or ordinal >= settings.total_shards:
                raise ValueError(
                    f"--total-shards {settings.total_shards} without --shard needs a StatefulSet "
                    f"host name ending in -0 … -{settings.total_shards - 1}, got {hostname!r}"
                )
            shard = ordinal
    by = settings.shard_by
    if by == "auto":
        single = static_count == 1 and not settings.kubeconfig_dir
        by = "object" if single else "cluster"
    return ShardPlan(shard, settings.total_shards, by)


class ClusterRunner:
    """Connects to one cluster and keeps a watch per served kind; reports state changes."""

    def __init__(
        self,
        spec: ClusterSpec,
        settings: ExporterSettings,
        sink: FluxObjectSink,
        health: WatchHealth,
        list_gate: asyncio.Semaphore,
        object_filter: Callable[[str], bool] | None,
        clock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.sink = sink
        self.health = health
        self.list_gate = list_gate
        self.object_filter = object_filter
        self.clock = clock
        self.rng = rng or random.Random()
        self.state = ClusterState(reachable=False, synced=False, error="connecting")
        self.objects_listed: dict[str, int] = {}
        self._client: KubeClient | None = None
        self._watches: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._listed_since_full: set[str] = set()
        self._ever_listed: set[str] = set()
        self._served: dict[str, str] = {}
        self._published: ClusterState | None = None
        self._denied: set[str] = set()  # kinds ("" = discovery) last answered with 401/403

    @property
    def name(self) -> str:
        return self.spec.name

    # ---- WatchObserver ---------------------------------------------------------------------

    def request_succeeded(self, kind: str = "") -> None:
        if self._denied:
            self._denied.discard(kind)
            if not self._denied:
                self._update(reachable=True, error="", auth_failed=False)
                return
        if not self.state.reachable:
            self._update(reachable=True, error="")

    def request_failed(self, error: BaseException, kind: str = "") -> None:
        if isinstance(error, ApiError) and error.code in AUTH_FAILURE_CODES:
            # The server answered, but nothing can be watched with these credentials (or, for
            # one kind, this RBAC): an operator must fix the kubeconfig or the role, so this is
            # told apart from an outage, which fixes itself.
            self._denied.add(kind)
            if not self.state.auth_failed:  # the first refusal is the story; retries add nothing
                what = "authentication failed" if error.code == 401 else "permission denied"
                message = f"{what}{f' for {kind}' if kind else ''}: {error}"
                self._update(auth_failed=True, error=message)
            return
        connection_level = isinstance(error, ConnectionFailed) or (
            isinstance(error, ApiError) and error.code in (502, 503, 504)
        )
        if connection_level:
            self._update(reachable=False, error=str(error))
        elif str(error) != self.state.error:
            self._update(error=str(error))

    def listed(self, kind: str, count: int) -> None:
        self.objects_listed[kind] = count
        self._ever_listed.add(kind)
        self._listed_since_full.add(kind)
        changes: dict[str, object] = {}
        if set(self._served) <= self._listed_since_full:
            self._listed_since_full.clear()
            changes["last_full_sync"] = self.clock()
        if not self.state.synced and set(self._served) <= self._ever_listed:
            changes["synced"] = True
        if changes:
            self._update(**changes)

    # ---- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        attempt = 0
        self._publish()
        try:
            while True:
                retry_after: float | None = None
                try:
                    if self._client is None:
                        self._client = await connect(self.spec)
                    served = await discover(
                        self._client, deadline=self.settings.watch.request_timeout_seconds
                    )
                    self.apply_served(served)
                    attempt = 0
                    await asyncio.sleep(self.settings.watch.rediscovery_interval_seconds)
                    continue
                except ClusterSourceError as exc:
                    self._update(reachable=False, error=str(exc))
                except ApiError as exc:
                    self.health.api_error(self.name, exc.code)
                    self.request_failed(exc)
                    retry_after = exc.retry_after
                except ConnectionFailed as exc:
                    self.health.api_error(self.name, None)
                    self.request_failed(exc)
                except Exception as exc:  # a surprising answer must not end the cluster's runner
                    log.exception("cluster %s: discovery failed", self.name)
                    self._update(error=f"discovery failed: {type(exc).__name__}")
                delay = backoff_delay(
                    attempt, self.settings.watch.backoff, self.rng.random(), retry_after
                )
                attempt += 1
                await asyncio.sleep(delay)
        finally:
            await self._stop_watches()
            if self._client is not None:
                await self._client.close()
                self._client = None

    def apply_served(self, served: dict[str, str]) -> None:
        """Brings the watches in line with what discovery found: start, stop or re-version."""
        for kind, (version, task) in list(self._watches.items()):
            if served.get(kind) != version:
                task.cancel()
                del self._watches[kind]
                if kind not in served:
                    # The CRD is gone: its objects are gone too.
                    self.sink.replace(self.name, kind, [])
                    self.objects_listed.pop(kind, None)
                    self._ever_listed.discard(kind)
                    self._listed_since_full.discard(kind)
                    log.info("cluster %s: %s is no longer served", self.name, kind)
        assert self._client is not None
        for kind, version in sorted(served.items()):
            if kind in self._watches:
                continue
            if self._served.get(kind) not in (None, version):
                log.info("cluster %s: %s now served at %s", self.name, kind, version)
                self._ever_listed.discard(kind)
            watcher = Watcher(
                client=self._client,
                target=WatchTarget(
                    self.name,
                    KINDS_BY_NAME[kind],
                    version,
                    self.settings.namespace,
                    self.settings.label_selector,
                ),
                sink=self.sink,
                settings=self.settings.watch,
                observer=self,
                health=self.health,
                list_gate=self.list_gate,
                owns_uid=self.object_filter,
                rng=self.rng,  # shared: a Random is 2.5 KiB, times 7,000 watches
            )
            task = asyncio.create_task(
                infinite_watch(watcher), name=f"watch {self.name} {kind} {version}"
            )
            self._watches[kind] = (version, task)
        self._served = dict(served)
        self._denied.discard("")
        for kind in list(self._denied):
            if kind not in served:
                self._denied.discard(kind)
        self._update(
            reachable=True,
            auth_failed=bool(self._denied),
            error=self.state.error if self._denied else "",
            served={k: f"{KINDS_BY_NAME[k].group}/{v}" for k, v in sorted(served.items())},
            synced=set(served) <= self._ever_listed,
        )

    async def _stop_watches(self) -> None:
        tasks = [task for _, task in self._watches.values()]
        self._watches.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---- state reporting ---------------------------------------------------------------------

    def _update(self, **changes: object) -> None:
        self.state = replace(self.state, **changes)  # type: ignore[arg-type]
        self._publish()

    def _publish(self) -> None:
        state = self.state
        previous = self._published
        if previous == state:
            return
        if previous is None or _loggable(previous) != _loggable(state):
            # Failures, and the end of one, at warning: `--log-level warning` must still show
            # a cluster that cannot be watched and when it came back.
            troubled = _troubled(state) or (previous is not None and _troubled(previous))
            level = logging.WARNING if troubled else logging.INFO
            log.log(level, "cluster %s: %s", self.name, describe_state(state))
        self._published = state
        if state.error == "connecting" and not state.reachable:
            # Not told to the sink: "unreachable" then "reachable" at start would read as an
            # outage and its recovery (a transition, a notification) for every cluster.
            return
        self.sink.cluster_changed(self.name, state)


def _loggable(state: ClusterState) -> tuple[object, ...]:
    return (
        state.reachable,
        state.auth_failed,
        state.synced,
        tuple(sorted(state.served.items())),
        state.error,
    )


def _troubled(state: ClusterState) -> bool:
    connecting = not state.reachable and state.error == "connecting"
    return not connecting and (state.auth_failed or not state.reachable or bool(state.error))


def describe_state(state: ClusterState) -> str:
    """One human line for a cluster state change (no secrets: errors carry no credentials)."""
    if not state.reachable and state.error == "connecting":
        return "connecting"
    if state.auth_failed:
        parts = ["credentials rejected"]
    else:
        parts = ["reachable" if state.reachable else "unreachable"]
    if state.reachable:
        parts.append("synced" if state.synced else "syncing")
        parts.append(f"{len(state.served)} kinds served ({_kinds_by_version(state.served)})")
    if state.error:
        parts.append(f"error: {state.error}")
    return ", ".join(parts)


def _kinds_by_version(served: Mapping[str, str]) -> str:
    """``source.toolkit.fluxcd.io/v1: 6, helm.toolkit.fluxcd.io/v2: 1``: counts adding up to the
    number of kinds, so an old-Flux cluster's mix of versions reads at a glance."""
    if not served:
        return "no Flux"
    per_version = Counter(served.values())
    return ", ".join(f"{version}: {n}" for version, n in sorted(per_version.items()))


class Fleet:
    """The set of cluster runners, kept equal to the configured (and owned) clusters."""

    def __init__(
        self,
        settings: ExporterSettings,
        sink: FluxObjectSink,
        health: WatchHealth,
        plan: ShardPlan,
        static: Sequence[ClusterSpec] = (),
        clock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.health = health
        self.plan = plan
        self.clock = clock
        self.rng = rng or random.Random()
        self.list_gate = asyncio.Semaphore(settings.watch.max_concurrent_lists)
        self.runners: dict[str, tuple[ClusterRunner, asyncio.Task[None]]] = {}
        self._static = list(static)
        self._dir_problems: set[str] = set()
        self._progress_lines = 0
        self.started = False

    def _wanted(self) -> dict[str, ClusterSpec]:
        specs = list(self._static)
        if self.settings.kubeconfig_dir:
            found, problems = scan_kubeconfig_dir(self.settings.kubeconfig_dir)
            static_names = {s.name for s in specs}
            for spec in found:
                if spec.name in static_names:
                    problems.append(
                        f"{spec.kubeconfig}: cluster {spec.name!r} is already configured"
                    )
                else:
                    specs.append(spec)
            # Each problem is logged once (the directory is rescanned every few seconds), and
            # counted for as long as it lasts.
            for problem in sorted(set(problems) - self._dir_problems):
                log.warning("kubeconfig directory: %s; skipped, the other files are used", problem)
            self._dir_problems = set(problems)
            self.health.kubeconfig_files_unusable.set(len(self._dir_problems))
        return {s.name: s for s in specs if self.plan.owns_cluster(s.name)}

    def _reconcile(self) -> None:
        wanted = self._wanted()
        for name, (runner, task) in list(self.runners.items()):
            if wanted.get(name) != runner.spec:
                log.info("cluster %s: removed from the configuration", name)
                task.cancel()
                del self.runners[name]
                self._forget(name)
                # Its watch tasks stop only when the runner's cleanup runs, a loop turn or more
                # later; an event they deliver meanwhile would bring the cluster back into the
                # store (and the health counters) for good. Forget again once they are gone.
                task.add_done_callback(functools.partial(self._forget_if_gone, name))
        for name, spec in sorted(wanted.items()):
            if name in self.runners:
                continue
            runner = ClusterRunner(
                spec,
                self.settings,
                self.sink,
                self.health,
                self.list_gate,
                self.plan.object_filter,
                self.clock,
                random.Random(self.rng.random()),
            )
            task = asyncio.create_task(runner.run(), name=f"cluster {name}")
            self.runners[name] = (runner, task)

    def _forget(self, name: str) -> None:
        self.sink.forget_cluster(name)
        self.health.forget(name)

    def _forget_if_gone(self, name: str, _stopped: asyncio.Task[None]) -> None:
        if name not in self.runners:  # not re-added meanwhile (an edited kubeconfig file)
            self._forget(name)

    def start(self) -> None:
        """Starts the configured clusters now (``run`` keeps them in line afterwards)."""
        limit_tls_read_buffers()
        self.started = True
        self._reconcile()

    def progress(self) -> tuple[int, int, int, int]:
        """Clusters synced, clusters still syncing, clusters watched, objects listed so far.

        A cluster found unreachable is neither: it does not hold the initial sync up forever.
        """
        runners = [runner for runner, _ in self.runners.values()]
        synced = sum(1 for r in runners if r.state.synced)
        pending = sum(
            1
            for r in runners
            if not r.state.synced and (r.state.reachable or r.state.error == "connecting")
        )
        objects = sum(sum(r.objects_listed.values()) for r in runners)
        return synced, pending, len(runners), objects

    async def run(self) -> None:
        """Runs until cancelled; then stops every cluster and closes its client."""
        started = time.monotonic()
        if not self.started:
            self.start()
        progress = asyncio.create_task(self._log_progress(started), name="sync progress")
        try:
            while True:
                await asyncio.sleep(self.settings.dir_scan_interval_seconds)
                if self.settings.kubeconfig_dir:
                    self._reconcile()
        finally:
            progress.cancel()
            tasks = [task for _, task in self.runners.values()]
            self.runners.clear()
            for task in tasks:
                task.cancel()
            for task in [progress, *tasks]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _log_progress(self, started: float) -> None:
        interval = self.settings.progress_log_interval_seconds
        while True:
            await asyncio.sleep(min(interval, 0.5))
            synced, pending, total, objects = self.progress()
            if total and not pending:
                log.info(
                    "initial sync done: %d/%d clusters synced, %d objects in %.1f s",
                    synced,
                    total,
                    objects,
                    time.monotonic() - started,
                )
                return
            if time.monotonic() - started >= interval * (1 + self._progress_lines):
                self._progress_lines += 1
                log.info(
                    "initial sync: %d/%d clusters synced, %d objects so far",
                    synced,
                    total,
                    objects,
                )
