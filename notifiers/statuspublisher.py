"""Publishes fleet rollouts as commit statuses: one fleet context per object and commit, and
optionally one per cluster, on every commit-status destination (GitHub, GitLab, ...).

Commit statuses are state, not messages: what matters is that the host ends up showing the
newest verdict, not that every step is delivered. So the publisher keeps, durably in the
rollout store (``rollouts.sqlite3``, or PostgreSQL shared by replicas), the last status posted
per (destination, commit, context) and one queued "desired" status per key that newer verdicts
overwrite:

- equal to the last posted one: nothing is sent (idempotent, also across restarts);
- a progress update ("applied on 212/500") waits ``min_interval`` after the previous post
  with the same state, so a 500-cluster rollout is tens of posts, far under GitHub's cap of
  1,000 statuses per commit and context (the cap is also counted and respected);
- retryable failures back off (``Retry-After`` honoured); a permanent one (401, 403, 422) makes
  that key dead, logged and counted, and every other key carries on.

The same state also reaches chat destinations as one message per rollout, updated in place:
when a route sets ``fleet_rollouts``, each new line ("Kustomization flux-system/apps rev
abc1234: applied on 212/500 clusters") becomes one event (source ``rollout``) submitted through
the normal routing and outbox, paced like the statuses and never repeated (the last line per
rollout is kept in ``chat_posted``). Slack turns them into one thread parent edited in place.

Deciding is pure (``notifiers.statusplan``: ``plan_status``, ``desired_statuses``, ``pace``,
``fleet_rollout_event``); the loop here only reads, posts and records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from notifiers.http import HttpClient, TransportError
from notifiers.intake import new_event_id
from notifiers.metrics import BridgeMetrics
from notifiers.model import Event, Fail, Ok, Retry
from notifiers.providers.commitstatus import (
    CommitStatus,
    CommitStatusOptions,
    RepoRef,
    redact,
)
from notifiers.retry import backoff
from notifiers.rollouts import (
    FailPolicy,
    Identity,
    Rollout,
    Tally,
    fleet_chat_line,
    tally,
)
from notifiers.rolloutstore import (
    ReportResult,
    RolloutConn,
    RolloutStore,
    current_rollouts,
    objects_of,
    rollouts_of,
    shards_complete,
)
from notifiers.statusplan import (
    Posted,
    StatusTarget,
    desired_statuses,
    fleet_rollout_event,
    pace,
    plan_status,
)

log = logging.getLogger("fluxwatch.bridge.statuses")

MIN_INTERVAL = 10.0  # between progress updates of one context
MAX_ATTEMPTS = 20
MAX_RETRY_AFTER = 3600.0
BATCH = 32
REQUEST_TIMEOUT = 15.0
CHAT_RETRY = 5.0  # after the outbox refused a fleet rollout update
CLAIM_RETRY = 0.2  # after finding another replica sending the line: it records it at once
Submit = Callable[[Sequence[Event]], Awaitable[None]]


def _chat_posted(conn: RolloutConn, rollout: Rollout) -> Posted | None:
    row = conn.execute(
        "SELECT state, line, 1, posted_at FROM chat_posted "
        "WHERE kind=? AND namespace=? AND name=? AND revision=?",
        (*rollout.identity, rollout.revision),
    ).fetchone()
    return Posted(*row) if row else None


def _posted(conn: RolloutConn, destination: str, sha: str, context: str) -> Posted | None:
    row = conn.execute(
        "SELECT state, description, posts, posted_at FROM status_posted "
        "WHERE destination=? AND sha=? AND context=?",
        (destination, sha, context),
    ).fetchone()
    return Posted(*row) if row else None


class StatusPublisher:
    def __init__(
        self,
        store: RolloutStore,
        targets: Sequence[StatusTarget],
        policy: FailPolicy,
        metrics: BridgeMetrics,
        *,
        clock: Callable[[], float] = time.time,
        min_interval: float = MIN_INTERVAL,
        rng: random.Random | None = None,
        submit: Submit | None = None,
    ) -> None:
        self.store = store
        self.submit = submit  # set when a route delivers fleet rollout state to chat
        self.targets = list(targets)
        self.policy = policy
        self.clock = clock
        self.min_interval = min_interval
        self.rng = rng if rng is not None else random.Random()
        self._dirty: set[Identity] = set()
        self._busy = False  # a planning or delivery round is running
        self._counted: set[tuple[str, int, str]] = set()
        self._chat_due: dict[Identity, float] = {}  # paced chat updates, due later
        self._contended: set[Identity] = set()  # chat lines another replica was sending
        self._look_all = True  # compare every current rollout with what was posted
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._http: HttpClient | None = None
        self.posted = metrics.commit_statuses
        self.skipped = metrics.commit_statuses_skipped

    @property
    def active(self) -> bool:
        return bool(self.targets) or self.submit is not None

    def look_again(self) -> None:
        """Compare every current rollout with what was posted, as after a start: with replicas,
        a paced update another replica held in memory when it died is sent from here."""
        self._look_all = True
        self._wake.set()

    def on_report(self, result: ReportResult) -> None:
        if self.active and result.touched:
            self._dirty |= result.touched
            self._wake.set()

    def start(self) -> None:
        if not self.active or self._task is not None:
            return
        self._http = HttpClient()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="commit-statuses")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def idle(self) -> bool:
        """Nothing dirty and nothing due (for tests and shutdown)."""
        now = self.clock()
        if (
            self._dirty
            or self._busy
            or self._contended
            or (self._look_all and self._task is not None)
            or any(d <= now for d in self._chat_due.values())
        ):
            return False
        due = await self.store.call(
            lambda conn: conn.execute(
                "SELECT count(*) FROM status_queue WHERE dead=0 AND next_at<=?", (now,)
            ).fetchone()[0]
        )
        return int(due) == 0

    async def _run(self) -> None:
        while True:
            self._busy = True
            try:
                if self._look_all:
                    # After a restart, every current rollout is compared with what was posted.
                    current = await self.store.call(current_rollouts)
                    self._dirty |= {r.identity for r in current}
                    self._look_all = False
                now = self.clock()
                for identity, due in list(self._chat_due.items()):
                    if due <= now:
                        del self._chat_due[identity]
                        self._dirty.add(identity)
                if self._dirty:
                    dirty, self._dirty = self._dirty, set()
                    skips, chat, later, contended = await self.store.call(
                        lambda conn, d=dirty: self._plan(conn, d)  # type: ignore[misc]
                    )
                    for identity in dirty:
                        self._chat_due.pop(identity, None)
                    self._chat_due.update(later)
                    self._contended = (self._contended - dirty) | contended
                    if chat:
                        await self._send_chat(chat)
                    for destination, rollout_id, reason in skips:
                        key = (destination, rollout_id, reason)
                        if key not in self._counted:
                            self._counted.add(key)
                            self.skipped.labels(destination, reason).inc()
                sent = await self._deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("commit status publishing failed; retrying")
                sent = 0
            finally:
                self._busy = False
            if not sent and not self._dirty:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)

    def _plan(
        self, conn: RolloutConn, identities: set[Identity]
    ) -> tuple[list[tuple[str, int, str]], list[Event], dict[Identity, float], set[Identity]]:
        now = self.clock()
        skips: list[tuple[str, int, str]] = []
        chat: list[Event] = []
        later: dict[Identity, float] = {}  # paced chat updates and when they are due
        contended: set[Identity] = set()  # another replica is sending their line
        conn.execute("BEGIN IMMEDIATE")
        try:
            # read inside the write transaction: with replicas, after every report before it
            complete = shards_complete(conn)
            for identity in sorted(identities):
                existing = rollouts_of(conn, identity)
                if not existing:
                    continue
                rollout = existing[-1]
                t = tally(rollout, objects_of(conn, identity), complete)
                if self.submit is not None:
                    self._plan_chat(conn, rollout, t, now, chat, later, contended)
                for target in self.targets:
                    if not target.wants(identity):
                        continue
                    statuses, why = desired_statuses(rollout, t, self.policy, target)
                    if why:
                        skips.append((target.destination, rollout.id, why))
                    for status, repo in statuses:
                        self._queue(conn, target, status, repo, now, skips, rollout.id)
            conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            finally:
                self.store.release(conn, [_chat_key(e) for e in chat])
            raise
        return skips, chat, later, contended

    def _plan_chat(
        self,
        conn: RolloutConn,
        rollout: Rollout,
        t: Tally,
        now: float,
        out: list[Event],
        later: dict[Identity, float],
        contended: set[Identity],
    ) -> None:
        state, line = fleet_chat_line(rollout, t, self.policy, rollout.success_at)
        key = _chat_key(rollout)
        if not self.store.try_claim(conn, key):
            # another replica is sending this rollout's line: look again once it recorded it
            later[rollout.identity] = now + CLAIM_RETRY
            contended.add(rollout.identity)
            return
        posted = _chat_posted(conn, rollout)
        due = pace(state, line, posted, now, self.min_interval)
        if posted is None and t.applied == t.total:
            # Already everywhere it was seen when the bridge first looked (its first start over
            # a running fleet): not news, or every object would post a message at once.
            due = None
        if due is not None and due > now:
            later[rollout.identity] = due
        if due is not None and due <= now:
            out.append(fleet_rollout_event(rollout, t, state, line, now, new_event_id()))
        else:
            self.store.release(conn, [key])  # held only while this line is being sent

    async def _send_chat(self, events: list[Event]) -> None:
        """Through the outbox (routing, grouping, retries); remembered only once it is stored.
        The claims ``_plan_chat`` took are given up once the line is recorded, or not sent."""
        assert self.submit is not None
        keys = [_chat_key(e) for e in events]
        try:
            await self.submit(events)
        except Exception as exc:
            log.warning("fleet rollout update not stored, retrying: %s", exc)
            retry_at = self.clock() + CHAT_RETRY
            for e in events:
                self._chat_due[(e.kind, e.namespace, e.name)] = retry_at
            await self.store.call(lambda conn: self.store.release(conn, keys))
            return
        rows = [
            (e.kind, e.namespace, e.name, e.revision, e.metadata["fleet_state"], e.message)
            for e in events
        ]
        now = self.clock()

        def record(conn: RolloutConn) -> None:
            try:
                conn.executemany(
                    "INSERT INTO chat_posted (kind, namespace, name, revision, state, line, "
                    "posted_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, namespace, "
                    "name, revision) DO UPDATE SET state=excluded.state, line=excluded.line, "
                    "posted_at=excluded.posted_at",
                    [(*r, now) for r in rows],
                )
            finally:
                self.store.release(conn, keys)

        await self.store.call(record)

    def _queue(
        self,
        conn: RolloutConn,
        target: StatusTarget,
        status: CommitStatus,
        repo: RepoRef,
        now: float,
        skips: list[tuple[str, int, str]],
        rollout_id: int,
    ) -> None:
        posted = _posted(conn, target.destination, status.sha, status.context)
        cap = int(getattr(target.api, "max_posts_per_context", 0))
        queue, not_before, why = plan_status(
            status, posted, now, min_interval=self.min_interval, max_posts=cap
        )
        key = (target.destination, status.sha, status.context)
        if why:
            skips.append((target.destination, rollout_id, why))
        payload = json.dumps(
            {"status": asdict(status), "repo": {"host": repo.host, "path": list(repo.path)}},
            sort_keys=True,
        )
        if not queue:
            if not why:
                self._drop_moot(conn, key, payload, now)
            return
        conn.execute(
            "INSERT INTO status_queue (destination, sha, context, payload, attempts, next_at, "
            "dead, last_error, last_code, queued_at) VALUES (?, ?, ?, ?, 0, ?, 0, '', NULL, ?) "
            "ON CONFLICT (destination, sha, context) DO UPDATE SET payload=excluded.payload, "
            "attempts=0, next_at=excluded.next_at, dead=0, last_error='', last_code=NULL "
            "WHERE status_queue.payload != excluded.payload OR status_queue.dead = 1",
            (*key, payload, not_before, now),
        )

    def _drop_moot(
        self, conn: RolloutConn, key: tuple[str, str, str], payload: str, now: float
    ) -> None:
        """The host already shows ``payload``: a queued older wish goes away, unless another
        replica is posting it right now; then the host will show that one, so ``payload`` takes
        its place in the queue and follows it (the holder removes only what it posted)."""
        claim = _status_key(*key)
        if self.store.try_claim(conn, claim):
            try:
                conn.execute(
                    "DELETE FROM status_queue WHERE destination=? AND sha=? AND context=? "
                    "AND dead=0",
                    key,
                )
            finally:
                self.store.release(conn, [claim])
            return
        # Only over a different queued wish: with none (the holder already recorded its post
        # and removed it), the host shows ``payload``.
        conn.execute(
            "UPDATE status_queue SET payload=?, attempts=0, next_at=?, last_error='', "
            "last_code=NULL WHERE destination=? AND sha=? AND context=? AND dead=0 "
            "AND payload != ?",
            (payload, now, *key, payload),
        )

    async def _deliver_due(self) -> int:
        now = self.clock()
        rows = await self.store.call(
            lambda conn: conn.execute(
                "SELECT destination, sha, context, payload, attempts, queued_at FROM status_queue "
                "WHERE dead=0 AND next_at<=? ORDER BY next_at LIMIT ?",
                (now, BATCH),
            ).fetchall()
        )
        targets = {t.destination: t for t in self.targets}
        for destination, sha, context, _payload, _attempts, _queued_at in rows:
            target = targets.get(destination)
            if target is None:  # the destination left the configuration
                await self.store.call(
                    lambda conn, k=(destination, sha, context): conn.execute(  # type: ignore[misc]
                        "DELETE FROM status_queue WHERE destination=? AND sha=? AND context=?", k
                    )
                )
                continue
            key = (destination, sha, context)
            claim = _status_key(*key)
            wish = await self.store.call(
                lambda conn, k=key, c=claim: self._claim_status(conn, k, c, now)  # type: ignore[misc]
            )
            if wish is None:
                continue  # another replica is posting it, or already did
            try:
                await self._deliver(target, sha, context, wish[0], wish[1])
            finally:
                await self.store.call(
                    lambda conn, c=claim: self.store.release(conn, [c])  # type: ignore[misc]
                )
        return len(rows)

    def _claim_status(
        self, conn: RolloutConn, key: tuple[str, str, str], claim: str, now: float
    ) -> tuple[str, int] | None:
        """The queued wish for ``key`` read under its claim, so that of two replicas only one
        posts it, and what it posts is the newest wish, not the one read before the claim."""
        if not self.store.try_claim(conn, claim):
            return None
        row = conn.execute(
            "SELECT payload, attempts FROM status_queue WHERE destination=? AND sha=? "
            "AND context=? AND dead=0 AND next_at<=?",
            (*key, now),
        ).fetchone()
        if row is None:
            self.store.release(conn, [claim])
            return None
        return str(row[0]), int(row[1])

    async def _deliver(
        self, target: StatusTarget, sha: str, context: str, payload: str, attempts: int
    ) -> None:
        assert self._http is not None
        doc = json.loads(payload)
        status = CommitStatus(**doc["status"])
        repo = RepoRef(doc["repo"]["host"], tuple(doc["repo"]["path"]))
        request = target.api.build(status, repo, target.options)
        try:
            response = await self._http.post(
                request.url, request.body, request.headers, REQUEST_TIMEOUT
            )
            outcome = redact(target.api.classify(response, self.clock()), target.options)
        except TransportError as exc:
            outcome = Retry(str(exc))
        now = self.clock()
        key = (target.destination, sha, context)
        attempts += 1
        if isinstance(outcome, Ok):
            self.posted.labels(target.destination, "posted").inc()

            def done(conn: RolloutConn) -> None:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(
                    "INSERT INTO status_posted (destination, sha, context, state, description, "
                    "posts, posted_at) VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT "
                    "(destination, sha, context) DO UPDATE SET state=excluded.state, "
                    "description=excluded.description, posts=status_posted.posts+1, "
                    "posted_at=excluded.posted_at",
                    (*key, status.state, status.description, now),
                )
                conn.execute(
                    "DELETE FROM status_queue WHERE destination=? AND sha=? AND context=? "
                    "AND payload=?",
                    (*key, payload),
                )
                conn.execute("COMMIT")

            await self.store.call(done)
            return
        if isinstance(outcome, Retry) and attempts < MAX_ATTEMPTS:
            self.posted.labels(target.destination, "retry").inc()
            delay = backoff(
                attempts, initial=2.0, multiplier=2.0, cap=300.0, draw=self.rng.random()
            )
            if outcome.after is not None:
                delay = min(max(outcome.after, 0.0), MAX_RETRY_AFTER)
            fields: tuple[Any, ...] = (
                attempts,
                now + delay,
                0,
                outcome.reason,
                outcome.status_code,
            )
        else:
            assert isinstance(outcome, Fail | Retry)
            self.posted.labels(target.destination, "dead").inc()
            log.error(
                "commit status for %s on %s (%s) is dead: %s",
                context,
                sha[:12],
                target.destination,
                outcome.reason,
            )
            fields = (attempts, now, 1, outcome.reason, outcome.status_code)
        await self.store.call(
            lambda conn: conn.execute(
                "UPDATE status_queue SET attempts=?, next_at=?, dead=?, last_error=?, last_code=? "
                "WHERE destination=? AND sha=? AND context=? AND payload=?",
                (*fields, *key, payload),
            )
        )


def _chat_key(item: Rollout | Event) -> str:
    """What a fleet chat line is claimed by: one rollout (object and revision)."""
    return f"chat/{item.kind}/{item.namespace}/{item.name}/{item.revision}"


def _status_key(destination: str, sha: str, context: str) -> str:
    return f"status/{destination}/{sha}/{context}"


def targets_from(
    destinations: Mapping[str, Any], providers: Mapping[str, Any]
) -> list[StatusTarget]:
    """Every configured destination whose type is a commit-status host."""
    out: list[StatusTarget] = []
    for name, dest in sorted(destinations.items()):
        provider_type = providers.get(dest.type)
        api = getattr(provider_type, "api", None)
        options = dest.options
        if (
            api is not None
            and isinstance(options, CommitStatusOptions)
            and (options.fleet or options.per_cluster)
        ):
            out.append(StatusTarget(name, api, options))
    return out


def dead_statuses(conn: RolloutConn) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT destination, sha, context, attempts, last_error, last_code FROM status_queue "
        "WHERE dead=1 ORDER BY destination, sha, context"
    )
    keys = ("destination", "sha", "context", "attempts", "last_error", "last_code")
    return [dict(zip(keys, r, strict=True)) for r in rows]
