"""Store bookkeeping: relist swaps atomically, deletes drop series, neighbours re-render."""

from __future__ import annotations

from exporter.exposition import render
from exporter.store import MetricStore
from tests.exporter import objects as o
from tests.exporter.scrape import samples, scrape, series, value


def _names(text: str, kind: str) -> set[str]:
    return {ls["name"] for ls in series(samples(text), "flux_resource_status", kind=kind)}


def test_a_scrape_during_replace_sees_the_old_complete_set() -> None:
    snapshots: list[str] = []
    store = MetricStore()
    old = [o.kustomization(f"k{i}") for i in range(50)]
    store.replace("c1", "Kustomization", old)
    # The store reads its clock at the start of a replace and again for every transition it
    # finds while filling the new set (before the swap): scrape at each of those moments.
    store.clock = lambda: (snapshots.append(render(store).decode()), o.T0_UNIX)[1]
    # The k* objects turn failing (a transition each, so the clock is read mid-fill).
    new = [o.failing(o.kustomization(f"k{i}"), "BuildFailed") for i in range(50)]
    new += [o.kustomization(f"n{i}") for i in range(10)]
    store.replace("c1", "Kustomization", new)
    assert len(snapshots) > 1, "the clock was not consulted while the new set was filled"
    for snapshot in snapshots:
        assert _names(snapshot, "Kustomization") == {f"k{i}" for i in range(50)}
        statuses = series(samples(snapshot), "flux_resource_status", kind="Kustomization")
        assert {ls["status"] for ls in statuses} == {"ready"}
    after = render(store).decode()
    assert _names(after, "Kustomization") == {f"k{i}" for i in range(50)} | {
        f"n{i}" for i in range(10)
    }


def test_replace_drops_vanished_objects_and_keeps_other_kinds() -> None:
    store = MetricStore()
    store.replace("c1", "GitRepository", [o.git_repository()])
    store.replace("c1", "Kustomization", [o.kustomization("a"), o.kustomization("b")])
    store.replace("c1", "Kustomization", [o.kustomization("b")])
    data = scrape(store)
    assert {s["name"] for s in series(data, "flux_resource_status", kind="Kustomization")} == {"b"}
    assert value(data, "flux_cluster_resources", kind="Kustomization", status="ready") == 1
    assert value(data, "flux_resource_status", kind="GitRepository") == 1


def test_delete_removes_every_series_of_the_object() -> None:
    store = MetricStore()
    store.upsert("c1", "HelmRelease", o.helm_release())
    store.delete("c1", "HelmRelease", o.helm_release())
    text = render(store).decode()
    assert 'name="web"' not in text
    assert value(samples(text), "flux_cluster_resources", kind="HelmRelease", status="ready") == 0


def test_dependents_follow_their_source_without_their_own_event() -> None:
    store = MetricStore()
    store.replace("c1", "GitRepository", [o.git_repository()])
    store.replace("c1", "Kustomization", [o.failing(o.kustomization(), "ArtifactFailed")])
    before = series(scrape(store), "flux_resource_status", kind="Kustomization")
    assert before[0]["root_kind"] == "Kustomization"
    store.upsert("c1", "GitRepository", o.failing(o.git_repository(), "GitOperationFailed"))
    after = series(scrape(store), "flux_resource_status", kind="Kustomization")
    assert (after[0]["root_kind"], after[0]["root_reason"]) == (
        "GitRepository",
        "GitOperationFailed",
    )
    store.upsert("c1", "GitRepository", o.git_repository())
    again = series(scrape(store), "flux_resource_status", kind="Kustomization")
    assert again[0]["root_kind"] == "Kustomization"


def test_initial_sync_in_any_kind_order_gives_the_same_root() -> None:
    store = MetricStore()
    store.replace("c1", "Kustomization", [o.failing(o.kustomization(), "ArtifactFailed")])
    store.replace("c1", "GitRepository", [o.failing(o.git_repository(), "GitOperationFailed")])
    got = series(scrape(store), "flux_resource_status", kind="Kustomization")
    assert got[0]["root_kind"] == "GitRepository"


def test_forget_cluster_drops_its_series() -> None:
    store = MetricStore()
    store.upsert("c1", "GitRepository", o.git_repository())
    store.upsert("c2", "GitRepository", o.git_repository())
    store.forget_cluster("c1")
    data = scrape(store)
    assert {s["cluster"] for s in series(data, "flux_resource_status")} == {"c2"}


def test_root_does_not_flap_while_the_root_object_retries() -> None:
    store = MetricStore()
    infra = o.kustomization("infra")
    store.replace("c1", "GitRepository", [o.git_repository()])
    store.replace("c1", "Kustomization", [infra, o.kustomization("apps", depends_on=("infra",))])
    store.upsert("c1", "Kustomization", o.failing(infra, "BuildFailed"))
    store.upsert(
        "c1",
        "Kustomization",
        o.failing(o.kustomization("apps", depends_on=("infra",)), "DependencyNotReady"),
    )
    for retry in (o.progressing(infra), o.failing(infra, "BuildFailed"), o.progressing(infra)):
        store.upsert("c1", "Kustomization", retry)
        got = series(scrape(store), "flux_resource_status", name="apps")
        assert (got[0]["root_name"], got[0]["root_reason"]) == ("infra", "BuildFailed")
    mine = series(scrape(store), "flux_resource_status", name="infra")
    assert (mine[0]["status"], mine[0]["root_reason"]) == ("progressing", "BuildFailed")
    store.upsert("c1", "Kustomization", infra)  # ready again: the dependent's root is itself
    got = series(scrape(store), "flux_resource_status", name="apps")
    assert (got[0]["root_name"], got[0]["root_reason"]) == ("apps", "DependencyNotReady")
