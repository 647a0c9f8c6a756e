"""Which clusters or objects this replica owns: a stable hash modulo the number of shards.

As kube-state-metrics does for objects, a key (a cluster name, or an object's uid) is hashed and
taken modulo the shard count, so N replicas computed independently agree on an exact split with
no overlap and no gap. The hash is the first 8 bytes of SHA-256 rather than KSM's FNV-1a: it is
just as stable across machines and Python versions (``hash()`` is salted per process), but its
low bits are well mixed, whereas FNV-1a's lowest bit is only the parity of the key's bytes, which
splits structured names (``cluster-001``…) unevenly over a power-of-two shard count.
"""

from __future__ import annotations

import hashlib
import re

_ORDINAL = re.compile(r"-(\d+)$")


def stable_hash(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def shard_of(key: str, total_shards: int) -> int:
    """The shard (0 … total_shards - 1) that owns ``key`` (a cluster name or an object uid)."""
    if total_shards <= 1:
        return 0
    return stable_hash(key) % total_shards


def owns(key: str, shard: int, total_shards: int) -> bool:
    return shard_of(key, total_shards) == shard


def ordinal_from_hostname(hostname: str) -> int | None:
    """A StatefulSet pod's ordinal from its host name (``fluxwatch-exporter-2`` -> 2)."""
    match = _ORDINAL.search(hostname.split(".", 1)[0])
    return int(match.group(1)) if match else None
