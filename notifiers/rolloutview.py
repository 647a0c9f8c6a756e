"""What a release manager watches during a fleet rollout: one row per rollout, newest first.

``fluxwatch rollouts`` (from the state directory or a running bridge's ``GET /rollouts``) and the
bridge's ``/rollouts`` page render the same rows. Building them is pure; ``load_view`` reads
a connection to the rollout state (``rollouts.sqlite3`` or PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from notifiers.rollouts import FailPolicy, Rollout, fleet_state, slowest, tally
from notifiers.rolloutstore import (
    RolloutConn,
    all_rollouts,
    current_rollouts,
    objects_of,
    shards_complete,
)


def rollout_row(
    rollout: Rollout,
    t_dict: Mapping[str, Any],
    state: str,
    description: str,
    now: float,
    slow: Sequence[tuple[str, float]],
    current: bool,
) -> dict[str, Any]:
    return {
        "kind": rollout.kind,
        "namespace": rollout.namespace,
        "name": rollout.name,
        "revision": rollout.revision,
        "started_at": rollout.started_at,
        "age_seconds": max(now - rollout.started_at, 0.0),
        "current": current,
        "state": state,
        "description": description,
        "total": t_dict.get("total", 0),
        "applied": t_dict.get("applied", 0),
        "pending": t_dict.get("pending", 0),
        "failing": t_dict.get("failing", 0),
        "failing_clusters": list(t_dict.get("failing_clusters", [])),
        "slowest": [{"cluster": c, "seconds": round(s, 1)} for c, s in slow],
    }


def load_view(
    conn: RolloutConn, policy: FailPolicy, now: float, limit: int = 50
) -> list[dict[str, Any]]:
    """Current rollouts live-tallied, superseded ones from their stored summary; newest first."""
    complete = shards_complete(conn)
    current_ids = {r.id for r in current_rollouts(conn)}
    rows: list[dict[str, Any]] = []
    for rollout in reversed(all_rollouts(conn)):
        if len(rows) >= limit:
            break
        if rollout.id in current_ids:
            t = tally(rollout, objects_of(conn, rollout.identity), complete)
            state, description = fleet_state(t, policy)
            rows.append(
                rollout_row(
                    rollout,
                    t.as_dict(),
                    state,
                    description,
                    now,
                    slowest(t, rollout.started_at, now),
                    True,
                )
            )
        else:
            rows.append(
                rollout_row(rollout, rollout.summary, "superseded", "superseded", now, [], False)
            )
    return rows


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def short_revision(revision: str) -> str:
    head, sep, digest = revision.rpartition(":")
    if sep and len(digest) > 12:
        return f"{head}:{digest[:12]}"
    return revision


def render_text(rows: Sequence[Mapping[str, Any]], dead: Sequence[Mapping[str, Any]] = ()) -> str:
    """A plain table, stable for a given input (what ``fluxwatch rollouts`` prints), then the
    commit statuses a host refused for good, so a revoked token is seen where rollouts are."""
    footer = "".join(
        f"dead commit status: {d['destination']} {d['context']} on {str(d['sha'])[:12]}: "
        f"{d['last_error']}\n"
        for d in dead
    )
    if not rows:
        return "no rollouts yet\n" + footer
    header = ("OBJECT", "REVISION", "STATE", "APPLIED", "FAILING", "AGE", "SLOWEST")
    table = [header]
    for r in rows:
        failing = ", ".join(f["cluster"] for f in r["failing_clusters"][:3])
        if r["failing"] > 3:
            failing += f" +{r['failing'] - 3}"
        slow = ", ".join(f"{s['cluster']} ({_age(s['seconds'])})" for s in r["slowest"])
        table.append(
            (
                f"{r['kind']} {r['namespace']}/{r['name']}",
                short_revision(str(r["revision"])),
                str(r["state"]),
                f"{r['applied']}/{r['total']}",
                f"{r['failing']}" + (f" ({failing})" if failing else ""),
                _age(float(r["age_seconds"])),
                slow or "-",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]
    return "\n".join(lines) + "\n" + footer


def render_html(rows: Sequence[Mapping[str, Any]], dead: Sequence[Mapping[str, Any]] = ()) -> str:
    """The bridge's rollout page: the same table, refreshed by the browser every 5 seconds."""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='5'><title>fluxwatch rollouts</title></head>"
        "<body><h1>Fleet rollouts</h1><pre>"
        + escape(render_text(rows, dead))
        + "</pre></body></html>\n"
    )
