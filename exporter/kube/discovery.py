"""Which Flux kinds a cluster serves, and at which version.

A fleet runs mixed Flux releases: one cluster serves ``source.toolkit.fluxcd.io/v1`` only,
another still ``v1beta2`` for some kinds (Flux 2.0-2.2 served GitRepository at v1 but
OCIRepository at v1beta2), another lacks image automation altogether. A group version being
served does not mean every kind is in it, so the choice is made per kind from the group
version's resource list, taking the first version of ``exporter.kinds`` preference order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.kinds import KINDS
from exporter.kube.client import ApiError, KubeClient

FLUX_GROUPS = frozenset(k.group for k in KINDS)


def served_group_versions(apis: Any) -> dict[str, tuple[str, ...]]:
    """Flux groups and their served versions from an ``APIGroupList`` (``GET /apis``)."""
    served: dict[str, tuple[str, ...]] = {}
    groups = apis.get("groups") if isinstance(apis, Mapping) else None
    for group in groups if isinstance(groups, list) else []:
        if not isinstance(group, Mapping) or group.get("name") not in FLUX_GROUPS:
            continue
        versions = [
            v["version"]
            for v in group.get("versions") or []
            if isinstance(v, Mapping) and isinstance(v.get("version"), str)
        ]
        served[str(group["name"])] = tuple(versions)
    return served


def group_versions_to_read(served: Mapping[str, tuple[str, ...]]) -> list[tuple[str, str]]:
    """The (group, version) resource lists needed to place every kind: only versions we use."""
    wanted: list[tuple[str, str]] = []
    for kind in KINDS:
        for version in kind.versions:
            pair = (kind.group, version)
            if version in served.get(kind.group, ()) and pair not in wanted:
                wanted.append(pair)
    return wanted


def listable_resources(resource_list: Any) -> frozenset[str]:
    """Plural names that can be listed and watched, from an ``APIResourceList``."""
    names: set[str] = set()
    resources = resource_list.get("resources") if isinstance(resource_list, Mapping) else None
    for resource in resources if isinstance(resources, list) else []:
        if not isinstance(resource, Mapping):
            continue
        name = resource.get("name")
        if not isinstance(name, str) or "/" in name:  # subresources such as foo/status
            continue
        verbs = resource.get("verbs")
        if isinstance(verbs, list) and not {"list", "watch"} <= set(verbs):
            continue
        names.add(name)
    return frozenset(names)


def choose_versions(resources: Mapping[tuple[str, str], frozenset[str]]) -> dict[str, str]:
    """Kind name -> version to use: the first preferred version whose list holds the kind."""
    chosen: dict[str, str] = {}
    for kind in KINDS:
        for version in kind.versions:
            if kind.plural in resources.get((kind.group, version), frozenset()):
                chosen[kind.kind] = version
                break
    return chosen


async def discover(client: KubeClient, *, deadline: float) -> dict[str, str]:
    """Kind name -> served version for one cluster (only kinds it serves)."""
    served = served_group_versions(await client.get_json("/apis", deadline=deadline))
    resources: dict[tuple[str, str], frozenset[str]] = {}
    for group, version in group_versions_to_read(served):
        try:
            doc = await client.get_json(f"/apis/{group}/{version}", deadline=deadline)
        except ApiError as exc:
            if exc.code != 404:
                raise
            continue  # removed between the two requests (a CRD being uninstalled)
        resources[(group, version)] = listable_resources(doc)
    return choose_versions(resources)
