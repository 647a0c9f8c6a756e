"""The example Alertmanager configuration shipped with the rules: everything to the bridge, and
inhibition so that one bad commit failing on 300 clusters pages once.

The fleet-level alerts (``scope="fleet"``) inhibit the per-object alerts (``scope="object"``) of
the same kind, namespace and name on every cluster; an unreachable cluster inhibits its object
alerts (their state is only the last one seen). The bridge then routes each alert to the owning
team, de-duplicates and delivers it (docs/bridge.md).
"""

from __future__ import annotations

from typing import Any

from alerts.settings import AlertSettings

DEFAULT_BRIDGE_URL = "http://fluxwatch-bridge.monitoring:9095/alertmanager"
DEFAULT_TOKEN_FILE = "/etc/alertmanager/secrets/fluxwatch-bridge-token"


def example_config(
    settings: AlertSettings,
    bridge_url: str = DEFAULT_BRIDGE_URL,
    token_file: str = DEFAULT_TOKEN_FILE,
    *,
    group_wait: str = "30s",
    group_interval: str = "5m",
    repeat_interval: str = "4h",
) -> dict[str, Any]:
    cl = settings.cluster_label
    return {
        "route": {
            "receiver": "fluxwatch-bridge",
            "group_by": ["alertname", cl, "kind", "namespace", "name"],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
            "routes": [
                {
                    # one notification per object and revision for the whole fleet
                    "matchers": ['scope="fleet"'],
                    "group_by": ["alertname", "kind", "namespace", "name"],
                },
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="FluxFleetResourceFailing"'],
                "target_matchers": [
                    'alertname=~"FluxResourceFailing|FluxSourceFetchFailing|'
                    'FluxResourceStalled|FluxHelmReleaseRetriesExhausted"'
                ],
                "equal": ["kind", "namespace", "name"],
            },
            {
                "source_matchers": ['alertname="FluxFleetRolloutStalled"'],
                "target_matchers": ['alertname="FluxResourceDriftNotConverging"'],
                "equal": ["kind", "namespace", "name"],
            },
            {
                "source_matchers": ['alertname="FluxClusterUnreachable"'],
                "target_matchers": ['scope="object"'],
                "equal": [cl],
            },
        ],
        "receivers": [
            {
                "name": "fluxwatch-bridge",
                "webhook_configs": [
                    {
                        "url": bridge_url,
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": token_file}
                        },
                    }
                ],
            }
        ],
    }
