"""Destination types by name: a new destination is one module and one entry here.

Shaped like notification-controller's ``factory.go``: the configuration names a ``type``; an
unknown type is a load-time error listing the known ones.
"""

from __future__ import annotations

from typing import Any

from notifiers.providers import (
    azure_devops,
    bitbucket,
    bitbucket_server,
    gitea,
    github,
    gitlab,
)
from notifiers.providers.base import Provider, ProviderContext, ProviderType
from notifiers.providers.console import ConsoleType
from notifiers.providers.slack import SlackType
from notifiers.providers.teams import TeamsType
from notifiers.providers.webhook import WebhookType

ProviderOptions = Any

PROVIDERS: dict[str, ProviderType] = {
    "console": ConsoleType(),
    "slack": SlackType(),
    "teams": TeamsType(),
    "webhook": WebhookType(),
    "github": github.TYPE,
    "gitlab": gitlab.TYPE,
    "gitea": gitea.TYPE,
    "bitbucket": bitbucket.TYPE,
    "bitbucket_server": bitbucket_server.TYPE,
    "azure_devops": azure_devops.TYPE,
}


def register_provider(provider_type: ProviderType) -> None:
    """For destination modules added later (commit statuses, ...): one module, one entry."""
    PROVIDERS[provider_type.name] = provider_type


__all__ = [
    "PROVIDERS",
    "Provider",
    "ProviderContext",
    "ProviderOptions",
    "ProviderType",
    "register_provider",
]
