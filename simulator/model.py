"""The engine's compact state of one Flux object: what a controller would remember between runs.

Statuses are rendered from this state (``simulator.status``), so the state stays small even for
50,000 objects, and a status is always consistent with the facts it is rendered from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from simulator.scenario import Fault

if TYPE_CHECKING:
    from simulator.store import Stored

CondStatus = Literal["True", "False", "Unknown"]


@dataclass(slots=True)
class Cond:
    status: CondStatus
    reason: str
    message: str
    since: float  # simulated time of the last transition
    generation: int


@dataclass(eq=False, slots=True)
class Obj:
    cluster: str
    kind: str
    namespace: str
    name: str
    interval: float
    extra: dict[str, Any] = field(default_factory=dict)
    source: Obj | None = None
    depends_on: tuple[Obj, ...] = ()
    dependents: list[Obj] = field(default_factory=list)
    generation: int = 1
    observed_generation: int = 1
    suspended: bool = False
    fault: Fault | None = None
    managed: bool = True  # False once a test replaced the object through the control API
    # sources: the newest upstream revision (index into the shared remote) and the stored one
    upstream: int = 0
    artifact_rev: str = ""
    artifact_time: float = 0.0
    artifact_size: int = 0
    # consumers
    applied_rev: str = ""
    attempted_rev: str = ""
    conditions: dict[str, Cond] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0
    install_failures: int = 0
    upgrade_failures: int = 0
    release_version: int = 0
    busy: bool = False  # a reconcile has started and not finished
    last_action: str = ""
    last_duration: float = 0.0
    due: float = 0.0  # when the next interval run is due; stale queue entries are skipped
    stored: Stored | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def ready(self) -> bool:
        cond = self.conditions.get("Ready")
        return cond is not None and cond.status == "True"

    def set_cond(
        self, ctype: str, status: CondStatus, reason: str, message: str, now: float
    ) -> None:
        """Set a condition; the transition time moves only when the status changes (as in
        apimachinery's ``meta.SetStatusCondition``)."""
        old = self.conditions.get(ctype)
        since = old.since if old is not None and old.status == status else now
        self.conditions[ctype] = Cond(status, reason, message, since, self.generation)

    def drop_cond(self, ctype: str) -> None:
        self.conditions.pop(ctype, None)


def hexdigest(*parts: object, length: int = 64) -> str:
    """Deterministic hex from ``parts``: every cluster sees the same digest for one commit."""
    raw = "/".join(str(p) for p in parts).encode()
    digest = hashlib.sha256(raw).hexdigest() if length > 40 else hashlib.sha1(raw).hexdigest()
    return digest[:length]


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` as Flux prints it: ``10m0s``, ``2.5s``, ``1h0m0s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        text = f"{seconds:.3f}".rstrip("0").rstrip(".")
        return f"{text}s"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s"
