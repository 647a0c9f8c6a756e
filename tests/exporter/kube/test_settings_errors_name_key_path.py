"""Parsing the exporter: section: defaults, values, and errors that name the bad key path."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.settings import (
    BackoffSettings,
    ClusterEntry,
    ExporterSettings,
    SettingsError,
    settings_from_mapping,
)

ERRORS: list[tuple[str, Any, str]] = [
    ("section-not-mapping", ["x"], "exporter: expected a mapping, got a list"),
    ("unknown-key", {"listn": ":1"}, "exporter.listn: unknown key"),
    ("listen-not-host-port", {"listen": "localhost"}, "exporter.listen: expected HOST:PORT"),
    ("listen-bad-port", {"listen": "h:99999"}, "exporter.listen: expected HOST:PORT"),
    (
        "context-not-string",
        {"clusters": [{"context": "a"}, {"context": "b"}, {"context": 3}]},
        "exporter.clusters[2].context: expected a string, got a number",
    ),
    (
        "cluster-missing-context",
        {"clusters": [{"name": "x"}]},
        "exporter.clusters[0].context: is required",
    ),
    ("contexts-not-list", {"contexts": "prod"}, "exporter.contexts: expected a list, got a string"),
    ("contexts-item", {"contexts": ["a", 1]}, "exporter.contexts[1]: expected a string"),
    ("bad-regex", {"context_regex": "prod-("}, "exporter.context_regex: not a regular expression"),
    (
        "per-object-choice",
        {"per_object": "some"},
        "exporter.per_object: expected one of all, not-ready, none",
    ),
    (
        "in-cluster-bool",
        {"in_cluster": "yes"},
        "exporter.in_cluster: expected true or false, got a string",
    ),
    ("shard-bool", {"shard": True}, "exporter.shard: expected an integer, got a boolean"),
    (
        "shard-out-of-range",
        {"shard": 3, "total_shards": 3},
        "exporter.shard: must be between 0 and",
    ),
    ("total-shards-zero", {"total_shards": 0}, "exporter.total_shards: must be at least 1"),
    ("watch-not-mapping", {"watch": 5}, "exporter.watch: expected a mapping, got a number"),
    (
        "inactivity-negative",
        {"watch": {"inactivity_timeout_seconds": -1}},
        "exporter.watch.inactivity_timeout_seconds: must be positive",
    ),
    (
        "backoff-jitter",
        {"watch": {"backoff": {"jitter": 1.5}}},
        "exporter.watch.backoff.jitter: must be in [0, 1)",
    ),
    (
        "backoff-unknown",
        {"watch": {"backoff": {"factor": 2}}},
        "exporter.watch.backoff.factor: unknown key",
    ),
    (
        "page-size-float",
        {"watch": {"page_size": 1.5}},
        "exporter.watch.page_size: expected an integer",
    ),
]


@pytest.mark.parametrize(("data", "message"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_values_name_their_key_path(data: Any, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        settings_from_mapping(data)
    assert str(info.value).startswith(message), str(info.value)


def test_key_path_prefix_is_the_callers() -> None:
    with pytest.raises(SettingsError, match=r"^fluxwatch\.yaml:exporter\.listen: "):
        settings_from_mapping({"listen": "x"}, key_path="fluxwatch.yaml:exporter")


def test_empty_section_gives_documented_defaults() -> None:
    assert settings_from_mapping(None) == ExporterSettings()
    assert settings_from_mapping({}) == ExporterSettings()


def test_values_are_parsed_into_typed_fields() -> None:
    settings = settings_from_mapping(
        {
            "listen": "127.0.0.1:0",
            "per_object": "not-ready",
            "kubeconfig": "/k",
            "contexts": ["a", "b"],
            "clusters": [{"context": "c", "name": "prod-c", "kubeconfig": "/other"}],
            "shard": 1,
            "total_shards": 4,
            "namespace": "flux-system",
            "label_selector": "sharding.fluxcd.io/key=shard1",
            "watch": {"inactivity_timeout_seconds": 5, "backoff": {"initial_seconds": 0.5}},
        }
    )
    assert settings.contexts == ("a", "b")
    assert settings.clusters == (ClusterEntry("c", "prod-c", "/other"),)
    assert (settings.shard, settings.total_shards) == (1, 4)
    assert settings.watch.inactivity_timeout_seconds == 5.0
    assert isinstance(settings.watch.inactivity_timeout_seconds, float)
    assert settings.watch.backoff == BackoffSettings(initial_seconds=0.5)


def test_every_field_has_a_docstring() -> None:
    """The docs table is generated from these; a field without one would be undocumented."""
    import ast
    import inspect

    import exporter.settings as module

    tree = ast.parse(inspect.getsource(module))
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        body = cls.body
        for index, node in enumerate(body):
            if isinstance(node, ast.AnnAssign):
                following = body[index + 1] if index + 1 < len(body) else None
                documented = isinstance(following, ast.Expr) and isinstance(
                    following.value, ast.Constant
                )
                assert documented, f"{cls.name}.{ast.unparse(node.target)} has no docstring"
