"""The one place where the exporter's transitions reach the notification bridge.

The exporter knows only its ``TransitionSink`` protocol and the bridge only plain mappings, so
neither imports the other; this adapter is all the glue there is.
"""

from __future__ import annotations

from exporter.transitions import Transition
from notifiers.app import Bridge


class BridgeTransitionSink:
    """A ``TransitionSink`` that stores each transition durably in the bridge's outbox."""

    def __init__(self, bridge: Bridge) -> None:
        self._bridge = bridge

    async def publish(self, transition: Transition) -> None:
        await self._bridge.accept_transition(transition.as_dict())
