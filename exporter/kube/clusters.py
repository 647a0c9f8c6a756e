"""Cluster sources: which clusters to watch, and one authenticated client per cluster.

A cluster comes from the exporter's own service account (in-cluster), from a context of a
kubeconfig (all contexts, chosen names, a regex, or listed one by one with a new name), or from a
file in a kubeconfig directory (one cluster per file, rescanned so files can come and go). The
decision of *which* clusters is pure (``static_clusters``, ``select_contexts``,
``scan_kubeconfig_dir``); ``connect`` is the only I/O, and it lets ``kubernetes_asyncio`` do
authentication exactly as kubectl's kubeconfig rules say (token, token file, client
certificate, exec plugin).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
import yaml
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from exporter.kube.client import KubeClient
from exporter.kube.kubelib import (
    ApiClient,
    ConfigNode,
    Configuration,
    KubeConfigLoader,
    kube_config,
)
from exporter.settings import ExporterSettings, yaml_type_name

log = logging.getLogger(__name__)

SourceKind = Literal["in-cluster", "kubeconfig", "kubeconfig-dir"]
_READ_BUFSIZE = 2**21  # as the library sets it: one watch line may hold a large object
_EXEC_REFRESH_MARGIN = datetime.timedelta(seconds=60)  # renew a token this long before it expires


class ClusterSourceError(ValueError):
    """A cluster source cannot be used (missing file, unknown context, bad YAML)."""


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """How to reach one cluster; equal specs mean nothing to reconnect."""

    name: str
    source: SourceKind
    kubeconfig: str = ""
    context: str = ""
    fingerprint: str = ""  # digest of a kubeconfig-dir file, so an edited file reconnects


def default_kubeconfig() -> str:
    """``$KUBECONFIG`` (may list several files, as kubectl merges them) or ``~/.kube/config``."""
    return os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")


def read_contexts(kubeconfig: str) -> tuple[list[str], str]:
    """Context names (in file order) and the current context of a kubeconfig (or a merged list).

    Raises ``ClusterSourceError`` naming the file when it is missing or not a kubeconfig.
    """
    merged = load_kubeconfig(kubeconfig).value
    names = [entry.value["name"] for entry in merged["contexts"]]
    current = merged.get("current-context")
    return names, current if isinstance(current, str) else ""


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 20x faster
_MERGED: dict[tuple[tuple[str, int, int], ...], Any] = {}


def load_kubeconfig(kubeconfig: str) -> Any:
    """The parsed kubeconfig (several files merged as kubectl does: first one wins), cached.

    A fleet kubeconfig with 500 contexts takes a noticeable time to parse; every cluster of it
    shares one parse, reused until a file changes (path, mtime and size are the cache key).
    """
    stamps = []
    for path in _paths(kubeconfig):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ClusterSourceError(f"{path}: cannot read: {exc.strerror}") from None
        stamps.append((path, st.st_mtime_ns, st.st_size))
    if not stamps:
        raise ClusterSourceError(f"{kubeconfig}: no such kubeconfig file")
    key = tuple(stamps)
    cached = _MERGED.get(key)
    if cached is not None:
        return cached
    merged: dict[str, Any] = {}
    seen: dict[str, set[str]] = {"clusters": set(), "contexts": set(), "users": set()}
    for path, _, _ in stamps:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ClusterSourceError(f"{path}: cannot read: {exc.strerror}") from None
        doc = _load_kubeconfig_yaml(data, path)
        for key_name, value in doc.items():
            if key_name not in seen:
                merged.setdefault(key_name, value)
        for item, names in seen.items():
            entries = merged.setdefault(item, [])
            for entry in doc.get(item) or []:
                name = entry.get("name") if isinstance(entry, Mapping) else None
                if isinstance(name, str) and name not in names:
                    names.add(name)
                    entries.append(ConfigNode(f"{path}/{item}", entry, path))
    node = ConfigNode(stamps[0][0], merged, stamps[0][0])
    _MERGED.clear()  # keep one: a changed file makes the old parse useless
    _MERGED[key] = node
    return node


_SECTIONS = ("clusters", "contexts", "users")


def _load_kubeconfig_yaml(data: bytes, path: str) -> Mapping[str, Any]:
    """A kubeconfig's top level, checked enough that nothing later trips over its shape.

    Every problem is one line naming the file: a kubeconfig is often a mounted Secret, where an
    empty or wrong key is a common mistake and a traceback would hide which file it was.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ClusterSourceError(f"{path}: not a kubeconfig (not UTF-8 text)") from None
    if not text.strip():
        raise ClusterSourceError(f"{path}: empty file, not a kubeconfig")
    try:
        doc = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ClusterSourceError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(doc, Mapping):
        raise ClusterSourceError(
            f"{path}: not a kubeconfig (expected a mapping with clusters, contexts and users, "
            f"found {yaml_type_name(doc)})"
        )
    for section in _SECTIONS:
        value = doc.get(section)
        if value is not None and not isinstance(value, list):
            raise ClusterSourceError(
                f"{path}: {section} must be a list, found {yaml_type_name(value)}"
            )
    return doc


def select_contexts(
    available: Sequence[str], names: Sequence[str], regex: str, kubeconfig: str = ""
) -> list[str]:
    """The contexts chosen by name and/or regex (full match), in kubeconfig order.

    Neither given: every context. A name that does not exist, or a regex that matches no
    context, is an error rather than an exporter that starts, serves nothing and looks healthy.
    """
    where = f"the kubeconfig {kubeconfig}" if kubeconfig else "the kubeconfig"
    missing = [n for n in names if n not in available]
    if missing:
        raise ClusterSourceError(
            f"context {missing[0]!r} is not in {where} (has: {_some_names(available)})"
        )
    if not names and not regex:
        return list(available)
    pattern = re.compile(regex) if regex else None
    chosen = [
        c
        for c in available
        if c in names or (pattern is not None and pattern.fullmatch(c) is not None)
    ]
    if pattern is not None and not any(pattern.fullmatch(c) for c in available):
        raise ClusterSourceError(
            f"context regex {regex!r} matches no context of {where} (it must match a whole "
            f"name; has: {_some_names(available)})"
        )
    return chosen


def _some_names(names: Sequence[str], limit: int = 10) -> str:
    if not names:
        return "no contexts"
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def static_clusters(settings: ExporterSettings) -> list[ClusterSpec]:
    """Clusters from the in-cluster, kubeconfig and ``clusters`` settings (not the directory)."""
    specs: list[ClusterSpec] = []
    if settings.in_cluster:
        specs.append(ClusterSpec(settings.in_cluster_name, "in-cluster"))
    chose_kubeconfig = bool(settings.kubeconfig or settings.contexts or settings.context_regex)
    nothing_chosen = not (
        settings.in_cluster or chose_kubeconfig or settings.clusters or settings.kubeconfig_dir
    )
    if chose_kubeconfig or nothing_chosen:
        path = settings.kubeconfig or default_kubeconfig()
        in_pod = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        if nothing_chosen and in_pod and not any(os.path.exists(p) for p in _paths(path)):
            # Running in a pod with no kubeconfig: the service account is the natural choice.
            return [ClusterSpec(settings.in_cluster_name, "in-cluster")]
        available, current = read_contexts(path)
        chosen = select_contexts(available, settings.contexts, settings.context_regex, path)
        if nothing_chosen and current and not settings.contexts:
            chosen = [current]  # like kubectl: no flags means the current context
        specs.extend(ClusterSpec(c, "kubeconfig", path, c) for c in chosen)
    for entry in settings.clusters:
        path = entry.kubeconfig or settings.kubeconfig or default_kubeconfig()
        available, _ = read_contexts(path)
        select_contexts(available, [entry.context], "", path)  # raises for an unknown context
        specs.append(ClusterSpec(entry.name or entry.context, "kubeconfig", path, entry.context))
    _check_unique(specs)
    return specs


def _paths(kubeconfig: str) -> list[str]:
    return [p for p in kubeconfig.split(os.pathsep) if p]


def _check_unique(specs: Sequence[ClusterSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ClusterSourceError(
                f"cluster name {spec.name!r} is used twice; rename one with clusters[].name"
            )
        seen.add(spec.name)


def scan_kubeconfig_dir(directory: str) -> tuple[list[ClusterSpec], list[str]]:
    """One cluster per readable kubeconfig file, and one problem line per unusable file.

    The cluster is the file's current context (or its only context) and takes that name.
    Hidden files are skipped: a mounted Secret or ConfigMap keeps its real files in ``..data``.
    """
    specs: list[ClusterSpec] = []
    problems: list[str] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        return [], [f"{directory}: cannot list: {exc.strerror}"]
    names: set[str] = set()
    seen: set[tuple[str, int, int, int]] = set()
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file():
            continue
        try:
            st = entry.stat()  # follows the symlinks of a mounted Secret
        except OSError as exc:
            problems.append(f"{entry.path}: cannot read: {exc.strerror}")
            continue
        stamp = (entry.path, st.st_ino, st.st_mtime_ns, st.st_size)
        seen.add(stamp)
        found = _DIR_FILES.get(stamp)
        if found is None:
            found = _read_dir_file(entry.path)
            _DIR_FILES[stamp] = found
        context, digest_or_problem = found
        if context is None:
            problems.append(digest_or_problem)
            continue
        if context in names:
            problems.append(f"{entry.path}: cluster {context!r} already comes from another file")
            continue
        names.add(context)
        specs.append(ClusterSpec(context, "kubeconfig-dir", entry.path, context, digest_or_problem))
    for stale in [k for k in _DIR_FILES if k not in seen]:
        del _DIR_FILES[stale]  # files removed or rewritten: forget their old parse
    return specs, problems


# (path, inode, mtime, size) -> (context, digest) or (None, problem): a rescan every few seconds
# of a directory of 500 files parses only the files that changed.
_DIR_FILES: dict[tuple[str, int, int, int], tuple[str | None, str]] = {}


def _read_dir_file(path: str) -> tuple[str | None, str]:
    try:
        data = Path(path).read_bytes()
        doc = _load_kubeconfig_yaml(data, path)
    except OSError as exc:
        return None, f"{path}: cannot read: {exc.strerror}"
    except ClusterSourceError as exc:
        return None, str(exc)
    contexts = [
        c["name"]
        for c in doc.get("contexts") or []
        if isinstance(c, Mapping) and isinstance(c.get("name"), str)
    ]
    current = doc.get("current-context")
    if isinstance(current, str) and current in contexts:
        return current, hashlib.sha256(data).hexdigest()[:16]
    if len(contexts) == 1:
        return contexts[0], hashlib.sha256(data).hexdigest()[:16]
    return None, f"{path}: set current-context (the file has {len(contexts)})"


async def connect(spec: ClusterSpec) -> KubeClient:
    """An authenticated client for one cluster; raises ``ClusterSourceError`` if unusable."""
    configuration = Configuration()
    if spec.source == "in-cluster":
        try:
            # Refreshes the projected service-account token from its file as it rotates.
            kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except kube_config.ConfigException as exc:
            raise ClusterSourceError(f"in-cluster: {exc}") from None
        return KubeClient(_api_client(configuration))
    try:
        loader = KubeConfigLoader(
            config_dict=load_kubeconfig(spec.kubeconfig),
            config_base_path=None,  # relative paths are relative to the file naming them
            active_context=spec.context,
        )
        await loader.load_and_set(configuration)
    except ClusterSourceError:
        raise
    except Exception as exc:  # the library raises plain exceptions for bad files
        raise ClusterSourceError(f"{spec.kubeconfig} context {spec.context}: {exc}") from None
    user = getattr(loader, "_user", None)
    if user is None or "exec" not in user:
        return KubeClient(_api_client(configuration))
    return _exec_plugin_client(configuration, loader)


def _api_client(configuration: Any) -> Any:
    """An ``ApiClient`` whose session does not consult the environment on every request.

    The library's session has ``trust_env=True``, so aiohttp reads ~/.netrc and the proxy
    variables in a worker thread twice per request: a third of the CPU of a 500-cluster initial
    sync. kubectl reads HTTPS_PROXY/NO_PROXY, not netrc, so the environment's proxy for the
    cluster is looked up once here and set explicitly (a kubeconfig ``proxy-url`` wins).
    """
    api = ApiClient(configuration)
    rest = api.rest_client
    old = rest.pool_manager
    limit = old.connector.limit if old.connector is not None else 100
    old.detach()  # its connector has no connection yet; dropped unused (aiohttp: no warning)
    connector = aiohttp.TCPConnector(limit=limit, ssl=shared_ssl_context(configuration))
    rest.pool_manager = aiohttp.ClientSession(
        connector=connector, trust_env=False, read_bufsize=_READ_BUFSIZE
    )
    if not rest.proxy:
        with contextlib.suppress(LookupError, ValueError):
            proxy, _auth = get_env_proxy_for_url(URL(configuration.host))
            rest.proxy = str(proxy)  # credentials, if any, stay in the URL as the env gave them
    return api


def shared_ssl_context(configuration: Any) -> ssl.SSLContext:
    """One ``SSLContext`` per distinct TLS setup, shared by the clusters that have it.

    The library builds a context per client: 21 KiB each under OpenSSL 3, 10 MiB for 500
    clusters that typically trust the same CA. The context is built exactly as the library
    builds it (same CA file, client certificate, verification flags) and keyed by the contents
    of those files, so two clusters share one only when their TLS settings are identical;
    hostname checking is per connection and unaffected. Only digests are kept as keys.
    """
    key = (
        _file_digest(configuration.ssl_ca_cert),
        _file_digest(configuration.cert_file),
        _file_digest(configuration.key_file),
        bool(configuration.verify_ssl),
        bool(configuration.disable_strict_ssl_verification),
    )
    context = _SSL_CONTEXTS.get(key)
    if context is None:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, keyfile=configuration.key_file)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if configuration.disable_strict_ssl_verification:
            context.verify_flags &= ~ssl.VERIFY_X509_STRICT
        if len(_SSL_CONTEXTS) >= _MAX_SSL_CONTEXTS:
            _SSL_CONTEXTS.clear()  # rotated material: clients keep their own reference
        _SSL_CONTEXTS[key] = context
    return context


# Keyed by file digests: a rotated certificate (new contents) gets a new context.
_SSL_CONTEXTS: dict[tuple[str, str, str, bool, bool], ssl.SSLContext] = {}
_MAX_SSL_CONTEXTS = 1024


def _file_digest(path: str | None) -> str:
    if not path:
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _exec_plugin_client(configuration: Any, loader: Any) -> KubeClient:
    """Renews an exec plugin's token as kubectl does: before it expires, and after a 401.

    The library reruns the plugin on every call when the credential has no expiry, so the
    decision to call it is made here rather than on each request.
    """
    state = {"force": False}

    async def refresh(_: Any) -> None:
        expiry = getattr(loader, "exec_plugin_expiry", None)
        due = expiry is not None and expiry - _EXEC_REFRESH_MARGIN <= datetime.datetime.now(
            tz=expiry.tzinfo
        )
        if not (due or state["force"]):
            return
        state["force"] = False
        if hasattr(loader, "exec_plugin_expiry"):
            del loader.exec_plugin_expiry
        try:
            await loader.load_from_exec_plugin()
        except Exception as exc:  # keep the old credential; the request says what is wrong
            log.warning("exec credential plugin failed: %s", str(exc)[:300])
            return
        if hasattr(loader, "token"):
            configuration.api_key["BearerToken"] = loader.token

    async def on_unauthorized() -> None:
        state["force"] = True

    configuration.refresh_api_key_hook = refresh
    return KubeClient(_api_client(configuration), on_unauthorized=on_unauthorized)
