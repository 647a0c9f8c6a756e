"""What the controllers write, as pure functions: revisions, failure messages, history entries.

Everything here is a function of the object's state, the seed and the time passed in, which is
what makes a seeded fleet reproducible byte for byte.
"""

from __future__ import annotations

from typing import Any

from simulator.model import Obj, hexdigest, iso


def source_revision(seed: int, obj: Obj, n: int) -> str:
    """The artifact revision of upstream commit ``n``: identical on every cluster."""
    kind, ref = obj.kind, obj.ref
    if kind == "GitRepository":
        branch = obj.extra.get("branch", "main")
        return f"{branch}@sha1:{hexdigest(seed, 'git', ref, n, length=40)}"
    if kind == "OCIRepository":
        tag = f"1.{n}.0" if obj.extra.get("semver") else obj.extra.get("tag", "latest")
        return f"{tag}@sha256:{hexdigest(seed, 'oci', ref, n)}"
    if kind == "HelmChart":
        repo = obj.source
        major = repo.extra.get("major", 1) if repo is not None else 1
        return f"{major}.{n}.0"
    if kind == "ImageRepository":
        return f"1.{n}.0"
    return "sha256:" + hexdigest(seed, kind, ref, n)


def chart_version(seed: int, release: Obj, offset: int = 0) -> str:
    """The chart version a HelmRelease would deploy from its source's artifact."""
    source = release.source
    assert source is not None
    if source.kind == "OCIRepository":
        n = source.upstream + offset
        digest = hexdigest(seed, "oci", source.ref, n)
        return f"1.{n}.0+{digest[:12]}"
    if offset:
        return source_revision(seed, source, source.upstream + offset)
    return source.artifact_rev


def latest_tag(repo: Obj) -> str:
    tags: list[str] = repo.extra.get("tags", [])
    return tags[-1] if tags else ""


def fetch_failure(obj: Obj) -> tuple[str, str]:
    """The reason and message a source controller reports when fetching fails."""
    kind, url = obj.kind, obj.extra.get("url") or obj.extra.get("image", obj.ref)
    failures: dict[str, tuple[str, str]] = {
        "GitRepository": (
            "GitOperationFailed",
            f"failed to checkout and determine revision: unable to clone '{url}': "
            "authentication required: Repository not found.",
        ),
        "OCIRepository": (
            "OCIArtifactPullFailed",
            f"failed to pull artifact from '{url}': GET: unexpected status code 503",
        ),
        "Bucket": (
            "BucketOperationFailed",
            f"bucket 'acme-{obj.name}' does not exist: The specified bucket does not exist",
        ),
        "HelmRepository": (
            "IndexationFailed",
            "failed to fetch Helm repository index: failed to cache index to temporary "
            "file: unexpected status code 502",
        ),
        "HelmChart": (
            "ChartPullFailed",
            f"chart pull error: failed to get chart version for remote reference: "
            f"no '{obj.extra.get('chart')}' chart with version matching '*' found",
        ),
        "ImageRepository": (
            "ReadOperationFailed",
            f"failed to list tags of '{url}': GET https://{url}/tags/list: "
            "unexpected status code 429 Too Many Requests",
        ),
    }
    return failures[kind]


def ks_history_entry(
    obj: Obj, rev: str, status: str, first: float, last: float, duration: float
) -> dict[str, Any]:
    return {
        "digest": "sha256:" + hexdigest(obj.cluster, obj.ref, rev, "manifests"),
        "firstReconciled": iso(first),
        "lastReconciled": iso(last),
        "lastReconciledDuration": f"{duration:.6f}".rstrip("0").rstrip(".") + "s",
        "lastReconciledStatus": status,
        "metadata": {"revision": rev},
        "totalReconciliations": 1,
    }


def record_ks_history(obj: Obj, rev: str, now: float, status: str) -> None:
    """Upsert the (digest, status) entry and move it first; keep five, newest first."""
    entry = ks_history_entry(obj, rev, status, now, now, obj.last_duration)
    for i, old in enumerate(obj.history):
        if old["digest"] == entry["digest"] and old["lastReconciledStatus"] == status:
            entry["firstReconciled"] = old["firstReconciled"]
            entry["totalReconciliations"] = old["totalReconciliations"] + 1
            del obj.history[i]
            break
    obj.history.insert(0, entry)
    del obj.history[5:]


def release_entry(
    seed: int, obj: Obj, version: str, status: str, at: float, action: str
) -> dict[str, Any]:
    chart = obj.extra["chart"]
    entry: dict[str, Any] = {
        "action": action,
        "appVersion": version.split("+")[0],
        "chartName": chart,
        "chartVersion": version,
        "configDigest": "sha256:" + hexdigest(obj.ref, "values", obj.generation),
        "digest": "sha256:" + hexdigest(obj.cluster, obj.ref, version, obj.release_version),
        "firstDeployed": iso(at),
        "lastDeployed": iso(at),
        "name": obj.name,
        "namespace": obj.namespace,
        "status": status,
        "version": obj.release_version,
    }
    if obj.extra.get("oci"):
        entry["ociDigest"] = "sha256:" + hexdigest(seed, "chart", obj.ref, version)
    if obj.extra.get("test"):
        hook = f"{chart}-test-{hexdigest(obj.ref, version, length=10)[:5]}"
        entry["testHooks"] = {
            hook: {"lastCompleted": iso(at + 4), "lastStarted": iso(at), "phase": "Succeeded"}
        }
    return entry


def trim_release_history(history: list[dict[str, Any]]) -> None:
    """Keep the newest five snapshots, but never lose the current release: helm-controller's
    history reaches back to the last successful one, so an upgrade after a run of failures is
    still an upgrade."""
    deployed = next((i for i, h in enumerate(history) if h["status"] == "deployed"), None)
    if deployed is None or deployed < 5:
        del history[5:]
    else:
        history[:] = [*history[:4], history[deployed]]
