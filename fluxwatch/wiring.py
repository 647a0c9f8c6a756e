"""The one place where the exporter's transitions and rollout reports reach the bridge in-process.

The exporter knows only its ``TransitionSink`` and ``RolloutReporter`` protocols and the bridge
only plain mappings, so neither imports the other; these adapters are all the glue there is.
(Exporters in other processes use ``exporter.bridgeclient`` over HTTP instead.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from exporter.transitions import Transition
from notifiers.app import Bridge
from notifiers.rollouts import parse_object

log = logging.getLogger(__name__)


class BridgeTransitionSink:
    """A ``TransitionSink`` that stores each transition durably in the bridge's outbox."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    async def publish(self, transition: Transition) -> None:
        await self._bridge.accept_transition(transition.as_dict())


class BridgeRolloutReporter:
    """A ``RolloutReporter`` storing each changed cluster's objects in the bridge's rollout state.

    Reports are state: the newest per cluster replaces an unsent older one, and one task stores
    them in order, so a slow disk never queues more than one report per cluster.
    """

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge
        self._pending: dict[str, list[Mapping[str, Any]]] = {}
        self._synced = False
        self._task: asyncio.Task[None] | None = None

    def report(self, clusters: Mapping[str, Sequence[Mapping[str, Any]]], synced: bool) -> None:
        for name, objects in clusters.items():
            self._pending[name] = list(objects)
        self._synced = synced
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            taken, self._pending = self._pending, {}
            now = self._bridge.clock()
            try:
                parsed = {
                    name: [parse_object(o, name, now, f"{name}[{i}]") for i, o in enumerate(objs)]
                    for name, objs in taken.items()
                }
                await self._bridge.rollouts.accept_report(
                    shard=0, total_shards=1, synced=self._synced, clusters=parsed
                )
            except Exception:
                log.exception("storing a rollout report failed; retrying")
                for name, objs in taken.items():
                    self._pending.setdefault(name, objs)  # unless a newer one arrived
                await asyncio.sleep(1.0)
