"""The generic webhook: Standard Webhooks signatures (verified by the reference library),
CloudEvents structured and binary modes, and the commit SHA parsed from Flux revisions."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from standardwebhooks import Webhook

from notifiers.model import Notification, commit_sha
from notifiers.providers.webhook import WebhookOptions, build_webhook_request
from tests.notifiers.fakes import WHSEC

SECRET = base64.b64decode(WHSEC.removeprefix("whsec_") + "==")


def notification(events: list[dict[str, Any]] | None = None) -> Notification:
    evs = events or [
        {
            "id": "e1",
            "type": "event",
            "source": "flux",
            "cluster": "prod-1",
            "kind": "Kustomization",
            "namespace": "apps",
            "name": "podinfo",
            "status": "failing",
            "severity": "error",
            "reason": "HealthCheckFailed",
            "message": "boom",
            "revision": "main@sha1:802723078affd3eb2a3898630261ab3ca5d6dd40",
            "commit": "802723078affd3eb2a3898630261ab3ca5d6dd40",
            "metadata": {"b": "2", "a": "1"},
        }
    ]
    return Notification(
        id=1,
        destination="ci",
        group_key="g",
        idempotency_key="fw_0123456789abcdef",
        created_at=1_800_000_000.0,
        events=evs,
        total_events=len(evs),
        object_keys=frozenset({"prod-1/Kustomization/apps/podinfo"}),
    )


def test_signature_verifies_with_the_reference_library() -> None:
    now = time.time()
    req = build_webhook_request(notification(), WebhookOptions(url="http://x", secret=SECRET), now)
    payload = Webhook(WHSEC).verify(req.body, dict(req.headers))
    assert req.headers["webhook-id"] == "fw_0123456789abcdef"
    assert req.headers["webhook-signature"].startswith("v1,")
    data = payload["data"]
    for key, value in {
        "cluster": "prod-1",
        "kind": "Kustomization",
        "namespace": "apps",
        "name": "podinfo",
        "status": "failing",
        "reason": "HealthCheckFailed",
        "message": "boom",
        "commit": "802723078affd3eb2a3898630261ab3ca5d6dd40",
    }.items():
        assert data[key] == value
    assert data["revision"].startswith("main@sha1:")


def test_tampered_body_fails_verification() -> None:
    req = build_webhook_request(
        notification(), WebhookOptions(url="http://x", secret=SECRET), time.time()
    )
    with pytest.raises(Exception, match="signature"):
        Webhook(WHSEC).verify(req.body.replace(b"failing", b"ready"), dict(req.headers))


def test_old_timestamp_is_rejected_by_receivers() -> None:
    req = build_webhook_request(
        notification(), WebhookOptions(url="http://x", secret=SECRET), time.time() - 600
    )
    with pytest.raises(Exception, match="too old"):
        Webhook(WHSEC).verify(req.body, dict(req.headers))


def test_cloudevents_structured_mode() -> None:
    req = build_webhook_request(
        notification(),
        WebhookOptions(url="http://x", secret=SECRET, cloudevents="structured"),
        time.time(),
    )
    doc = Webhook(WHSEC).verify(req.body, dict(req.headers))
    assert req.headers["Content-Type"] == "application/cloudevents+json; charset=UTF-8"
    assert doc["specversion"] == "1.0"
    assert doc["id"] == req.headers["webhook-id"]
    assert doc["source"]
    assert doc["type"] == "io.fluxwatch.event.failing"
    assert doc["data"]["name"] == "podinfo"


def test_cloudevents_binary_mode() -> None:
    req = build_webhook_request(
        notification(), WebhookOptions(url="http://x", cloudevents="binary"), time.time()
    )
    assert req.headers["ce-specversion"] == "1.0"
    assert req.headers["ce-id"] == "fw_0123456789abcdef"
    assert "ce-datacontenttype" not in req.headers
    assert req.headers["Content-Type"] == "application/json"
    assert json.loads(req.body)["kind"] == "Kustomization"
    assert "webhook-signature" not in req.headers  # no secret configured


def test_body_is_byte_stable_across_retries_and_metadata_order() -> None:
    a = build_webhook_request(notification(), WebhookOptions(url="http://x", secret=SECRET), 100.0)
    evs = [dict(notification().events[0])]
    evs[0]["metadata"] = {"a": "1", "b": "2"}
    b = build_webhook_request(
        notification(evs), WebhookOptions(url="http://x", secret=SECRET), 200.0
    )
    assert a.body == b.body


REVISIONS = [
    (
        "git-sha1",
        "main@sha1:802723078affd3eb2a3898630261ab3ca5d6dd40",
        "802723078affd3eb2a3898630261ab3ca5d6dd40",
    ),
    (
        "git-full-ref",
        "refs/heads/main@sha1:363A6A8FE6A7F13E05D34C163B1D0C8D9E8F7A6B",
        "363a6a8fe6a7f13e05d34c163b1d0c8d9e8f7a6b",
    ),
    (
        "git-tag",
        "v1.0.1@sha1:363a6a8fe6a7f13e05d34c163b1d0c8d9e8f7a6b",
        "363a6a8fe6a7f13e05d34c163b1d0c8d9e8f7a6b",
    ),
    ("git-sha256", "main@sha256:" + "ab" * 32, "ab" * 32),
    (
        "pre-v2",
        "main/731f7eaddfb6af01cb2173e18f0f75b0ba780ef1",
        "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1",
    ),
    (
        "oci-origin",
        "6.1.8/b3b00fe35424a45d373bf4c7214178bc36fd7872",
        "b3b00fe35424a45d373bf4c7214178bc36fd7872",
    ),
    (
        "bare-sha",
        "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1",
        "731f7eaddfb6af01cb2173e18f0f75b0ba780ef1",
    ),
    ("bucket-digest", "sha256:" + "ab" * 32, ""),
    ("chart-version", "6.0.3+2", ""),
    ("helmrelease-oci", "6.6.1+0cc9a8446c95", ""),
    ("empty", "", ""),
]


@pytest.mark.parametrize(
    ("revision", "sha"), [r[1:] for r in REVISIONS], ids=[r[0] for r in REVISIONS]
)
def test_commit_sha(revision: str, sha: str) -> None:
    assert commit_sha(revision) == sha
