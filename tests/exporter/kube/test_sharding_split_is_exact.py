"""Sharding: the hash is stable, every key has exactly one owner, and the split is even."""

from __future__ import annotations

import hashlib

import pytest

from exporter.kube.fleet import ShardPlan, plan_shards
from exporter.kube.sharding import ordinal_from_hostname, shard_of, stable_hash
from exporter.settings import ExporterSettings

CLUSTERS = [f"cluster-{i:03d}" for i in range(500)]
UIDS = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(5000)]


def test_hash_is_the_documented_one() -> None:
    # First 8 bytes of SHA-256, big-endian: a change here would reshuffle every running fleet.
    assert stable_hash("") == 0xE3B0C44298FC1C14
    assert (
        stable_hash("prod-eu") % 7
        == int.from_bytes(hashlib.sha256(b"prod-eu").digest()[:8], "big") % 7
    )


@pytest.mark.parametrize("total", [1, 2, 3, 5, 8], ids=lambda n: f"{n}-shards")
@pytest.mark.parametrize("keys", [CLUSTERS, UIDS], ids=["clusters", "uids"])
def test_every_key_has_exactly_one_owner(total: int, keys: list[str]) -> None:
    by = "cluster" if keys is CLUSTERS else "object"
    plans = [ShardPlan(shard, total, by) for shard in range(total)]
    owners = [
        [p.shard for p in plans if (p.owns_cluster(k) if by == "cluster" else p.owns_object(k))]
        for k in keys
    ]
    assert all(len(o) == 1 for o in owners)
    sizes = [sum(1 for o in owners if o == [s]) for s in range(total)]
    assert sum(sizes) == len(keys)
    assert min(sizes) >= 0.7 * len(keys) / total  # a hash, not a round-robin: roughly even


def test_object_plan_keeps_every_cluster_and_cluster_plan_every_object() -> None:
    assert ShardPlan(1, 3, "object").owns_cluster("any")
    assert ShardPlan(1, 3, "cluster").owns_object("any")
    assert ShardPlan(0, 1, "object").object_filter is None


HOSTNAMES = [
    ("statefulset-pod", "fluxwatch-exporter-2", 2),
    ("fqdn", "fluxwatch-exporter-11.fluxwatch.monitoring.svc", 11),
    ("no-ordinal", "laptop", None),
]


@pytest.mark.parametrize(
    ("hostname", "ordinal"), [h[1:] for h in HOSTNAMES], ids=[h[0] for h in HOSTNAMES]
)
def test_ordinal_from_hostname(hostname: str, ordinal: int | None) -> None:
    assert ordinal_from_hostname(hostname) == ordinal


PLANS = [
    ("explicit", ExporterSettings(shard=1, total_shards=3), 5, "h", ShardPlan(1, 3, "cluster")),
    ("ordinal", ExporterSettings(total_shards=3), 5, "x-2", ShardPlan(2, 3, "cluster")),
    (
        "single-cluster-splits-objects",
        ExporterSettings(total_shards=2, shard=0),
        1,
        "h",
        ShardPlan(0, 2, "object"),
    ),
    (
        "forced-cluster",
        ExporterSettings(total_shards=2, shard=0, shard_by="cluster"),
        1,
        "h",
        ShardPlan(0, 2, "cluster"),
    ),
    (
        "dir-means-many",
        ExporterSettings(total_shards=2, shard=1, kubeconfig_dir="/d"),
        1,
        "h",
        ShardPlan(1, 2, "cluster"),
    ),
]


@pytest.mark.parametrize(
    ("settings", "static", "hostname", "expected"),
    [p[1:] for p in PLANS],
    ids=[p[0] for p in PLANS],
)
def test_plan_shards(
    settings: ExporterSettings, static: int, hostname: str, expected: ShardPlan
) -> None:
    assert plan_shards(settings, static, hostname) == expected


def test_total_shards_without_shard_or_ordinal_is_an_error() -> None:
    with pytest.raises(ValueError, match="StatefulSet"):
        plan_shards(ExporterSettings(total_shards=3), 5, "laptop")


def test_one_shard_owns_everything() -> None:
    assert {shard_of(k, 1) for k in CLUSTERS} == {0}
