"""Several `fluxwatch bridge` processes on one PostgreSQL outbox, and the destination they share.

The replicas are real subprocesses started exactly as an operator starts them (the same
config file, `FLUXWATCH_REPLICA_ID` set as the Helm chart sets it to the pod name), each on a
free port; events reach them over real HTTP with a generic-hmac signature, as
notification-controller sends them. The destination is a local HTTP server that can answer 503,
refuse connections, or hold one replica's requests open, and records every request with the
replica that sent it (found from the TCP connection's owner in /proc), so a test can say which
replica delivered what.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO_ROOT
from tests.notifiers.fakes import FakeDestination, Step, eventually, fast_webhook

HMAC_KEY = "ha-test-hmac-key-7f3a"
START_SECONDS = 30.0


@dataclass
class Replica:
    replica_id: str
    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    @property
    def running(self) -> bool:
        return self.process.returncode is None


@dataclass(eq=False)
class Attempt:
    """One request a destination received: which replica sent it, under which idempotency key,
    and how it was answered (``status`` stays 0 while it is in flight)."""

    key: str
    sender: str
    events: list[dict[str, Any]]
    received_at: float
    status: int = 0
    answered_at: float = 0.0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _local_socket_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the loopback TCP socket 127.0.0.1:local_port -> 127.0.0.1:remote_port."""
    want_local = f"0100007F:{local_port:04X}"
    want_remote = f"0100007F:{remote_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == want_local and fields[2] == want_remote:
            return fields[9]
    return None


def _owns_socket(pid: int, inode: str) -> bool:
    target = f"socket:[{inode}]"
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) == target:
                    return True
    return False


class RecordingDestination(FakeDestination):
    """A webhook receiver shared by the replicas: answers ``default`` (503 while it is down),
    records an ``Attempt`` per request, and holds the requests of the replicas named in
    ``hold_senders`` open until ``release()`` (a delivery the sender never hears the end of)."""

    def __init__(self, name: str, fleet: BridgeFleet) -> None:
        super().__init__()
        self.name = name
        self.fleet = fleet
        self.attempts: list[Attempt] = []
        self.hold_senders: set[str] = set()
        self._senders_by_port: dict[int, str] = {}

    def sender_of(self, request: web.Request) -> str:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if not peer:
            return "?"
        port = int(peer[1])
        if port not in self._senders_by_port:  # keep-alive: one lookup per connection
            sender = self.fleet.replica_owning_connection(port, self.port)
            if sender is None:
                return "?"
            self._senders_by_port[port] = sender
        return self._senders_by_port[port]

    def forget_sender(self, replica_id: str) -> None:
        """A killed replica's ports may be reused by another process."""
        self._senders_by_port = {p: s for p, s in self._senders_by_port.items() if s != replica_id}

    async def _handle(self, request: web.Request) -> web.Response:
        sender = self.sender_of(request)
        body = await request.read()
        key = request.headers.get("webhook-id") or request.headers.get("Idempotency-Key") or ""
        events: list[dict[str, Any]] = []
        with contextlib.suppress(ValueError, KeyError, TypeError):
            events = list(json.loads(body)["data"]["events"])
        attempt = Attempt(key, sender, events, time.monotonic())
        self.attempts.append(attempt)
        step = self.default
        if sender in self.hold_senders:
            await self._released.wait()
            step = self.default
        elif step.hold:
            await self._released.wait()
        attempt.status = step.status
        attempt.answered_at = time.monotonic()
        return web.Response(status=step.status, headers=dict(step.headers), text=step.body)

    def up(self) -> None:
        self.default = Step(200)
        self.release()

    def down(self) -> None:
        """Every request is answered 503 without Retry-After: the replicas retry quickly."""
        self.default = Step(503)

    async def refuse(self) -> None:
        """Connection refused: nothing listens on the port any more."""
        await self.stop()

    async def accept(self) -> None:
        """Listen again on the same port (the replicas' config names it)."""
        await self.start()

    def in_flight(self, sender: str) -> list[Attempt]:
        return [a for a in self.attempts if a.sender == sender and a.status == 0]

    def delivered(self) -> list[Attempt]:
        """Attempts answered 2xx, in the order they were answered."""
        return sorted((a for a in self.attempts if a.ok), key=lambda a: a.answered_at)

    def delivered_events(self) -> list[dict[str, Any]]:
        """Events of every distinct key answered 2xx, in the order of each key's first 2xx."""
        seen: set[str] = set()
        events: list[dict[str, Any]] = []
        for attempt in self.delivered():
            if attempt.key not in seen:
                seen.add(attempt.key)
                events.extend(attempt.events)
        return events


def sign(body: bytes) -> str:
    return "sha256=" + hmac.new(HMAC_KEY.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class BridgeFleet:
    """Bridge replicas sharing one config file and one PostgreSQL database."""

    workdir: Path
    dsn: str
    lease: str = "2s"
    replicas: dict[str, Replica] = field(default_factory=dict)
    destinations: dict[str, RecordingDestination] = field(default_factory=dict)
    _client: aiohttp.ClientSession | None = None

    @property
    def config_path(self) -> Path:
        return self.workdir / "fluxwatch.yaml"

    @property
    def client(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._client

    async def add_destinations(self, names: Iterable[str]) -> list[RecordingDestination]:
        added = []
        for name in names:
            dest = RecordingDestination(name, self)
            await dest.start()
            self.destinations[name] = dest
            added.append(dest)
        return added

    def write_config(self, route: Mapping[str, Any], **webhook: Any) -> Path:
        """The one config every replica runs: hmac-signed Flux intake, the fleet's
        destinations as fast-retrying webhooks, the outbox in PostgreSQL with a short lease."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "hmac-keys").write_text(HMAC_KEY + "\n")
        (self.workdir / "outbox.dsn").write_text(self.dsn)
        postgres: dict[str, Any] = {"dsn_file": str(self.workdir / "outbox.dsn")}
        if self.lease:
            postgres["lease"] = self.lease
        doc = {
            "bridge": {
                "listen": "127.0.0.1:0",
                "state_dir": str(self.workdir / "state"),
                "flux": {"hmac_keys_file": str(self.workdir / "hmac-keys")},
                "outbox": {"postgres": postgres},
                "route": dict(route),
                "destinations": {
                    name: fast_webhook(dest.url, **webhook)
                    for name, dest in sorted(self.destinations.items())
                },
            }
        }
        self.config_path.write_text(yaml.safe_dump(doc, sort_keys=True))
        return self.config_path

    async def spawn(self, replica_id: str) -> Replica:
        """Start one replica and wait until it listens and answers /readyz 200."""
        log = self.workdir / f"{replica_id}.log"
        out = self.workdir / f"{replica_id}.out"
        with log.open("ab") as err_file, out.open("wb") as out_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "fluxwatch",
                "bridge",
                "--config",
                str(self.config_path),
                cwd=REPO_ROOT,
                env={**os.environ, "FLUXWATCH_REPLICA_ID": replica_id},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_file,
                stderr=err_file,
            )
        replica = Replica(replica_id, process, 0, log)
        self.replicas[replica_id] = replica
        try:

            def listening() -> bool:
                if process.returncode is not None:
                    raise AssertionError(
                        f"replica {replica_id} exited with {process.returncode}: "
                        f"{log.read_text()[-2000:]}"
                    )
                for line in out.read_text().splitlines():
                    if "listening on" in line:
                        replica.port = int(line.strip().rsplit(":", 1)[1])
                        return True
                return False

            await eventually(listening, within=START_SECONDS, interval=0.05)
            await eventually(lambda: self.ready(replica), within=START_SECONDS, interval=0.05)
        except BaseException:
            await self.kill9(replica)
            raise
        return replica

    async def start(self, count: int) -> list[Replica]:
        """``count`` replicas r1..rN, started together as a Deployment's pods are."""
        return list(await asyncio.gather(*(self.spawn(f"r{i}") for i in range(1, count + 1))))

    async def ready(self, replica: Replica) -> bool:
        return await self.status(replica, "/readyz") == 200

    async def status(self, replica: Replica, path: str) -> int:
        try:
            async with self.client.get(replica.url + path) as resp:
                await resp.read()
                return resp.status
        except aiohttp.ClientError:
            return 0

    async def kill9(self, replica: Replica) -> None:
        if replica.running:
            replica.process.send_signal(signal.SIGKILL)
        await replica.process.wait()
        for dest in self.destinations.values():
            dest.forget_sender(replica.replica_id)

    async def stop(self, replica: Replica) -> None:
        """SIGTERM (a graceful pod shutdown); SIGKILL if it has not exited within 15 s."""
        if replica.running:
            replica.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(replica.process.wait(), 15)
            except TimeoutError:
                await self.kill9(replica)
                raise AssertionError(f"replica {replica.replica_id} ignored SIGTERM") from None

    async def close(self) -> None:
        """Stops every replica, destination and connection; nothing is left running."""
        try:
            results = await asyncio.gather(
                *(self.stop(r) for r in self.replicas.values()), return_exceptions=True
            )
        finally:
            for replica in self.replicas.values():
                await self.kill9(replica)
            for dest in self.destinations.values():
                await dest.stop()
            if self._client is not None:
                await self._client.close()
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def replica_owning_connection(self, local_port: int, remote_port: int) -> str | None:
        inode = _local_socket_inode(local_port, remote_port)
        if inode is None:
            return None
        for replica in self.replicas.values():
            if replica.running and _owns_socket(replica.pid, inode):
                return replica.replica_id
        return None

    async def post_flux(
        self, replica: Replica, event: Mapping[str, Any], cluster: str = "c1"
    ) -> tuple[int, str | None]:
        """POST a Flux event as a generic-hmac Provider does; (status, Retry-After).
        A connection error (the replica is gone) is status 0."""
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", "X-Signature": sign(body)}
        try:
            async with self.client.post(
                f"{replica.url}/flux/{cluster}", data=body, headers=headers
            ) as resp:
                await resp.read()
                return resp.status, resp.headers.get("Retry-After")
        except aiohttp.ClientError:
            return 0, None

    async def metrics(self, replica: Replica) -> dict[str, float]:
        """The replica's /metrics, each sample name summed over its labels."""
        async with self.client.get(replica.url + "/metrics") as resp:
            text = await resp.text()
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        return totals

    async def metric(self, replica: Replica, name: str) -> float:
        return (await self.metrics(replica)).get(name, 0.0)

    def live(self) -> list[Replica]:
        return [r for r in self.replicas.values() if r.running]
