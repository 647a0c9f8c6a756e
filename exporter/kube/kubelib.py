"""The parts of ``kubernetes_asyncio`` the exporter uses, without loading the generated API.

``import kubernetes_asyncio`` (or any submodule) runs the package's ``__init__``, which imports
every generated API class and every model: about 1,000 modules and 38 MiB of RSS in each
exporter process, of which the exporter uses none (it calls ``ApiClient.call_api`` with
``_preload_content=False`` and decodes JSON itself). What it does use is small: ``ApiClient``,
``Configuration``, the REST client and the kubeconfig / in-cluster loaders (auth, exec plugins).

So, when nothing has imported the library yet, its three heavy packages (``kubernetes_asyncio``,
``.client`` and ``.client.models``) are registered as lazy packages first: their submodules
import normally, and the first access to any other name runs the real ``__init__`` and answers
from it. Code that wants the whole library (``client.CoreV1Api``, a model class looked up by the
library while deserializing) gets it, just later. If the library is already loaded, nothing
changes.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

_HEAVY = ("kubernetes_asyncio", "kubernetes_asyncio.client", "kubernetes_asyncio.client.models")


class _LazyPackage(types.ModuleType):
    """A package whose ``__init__`` runs on the first access to a name it does not define."""

    def __getattr__(self, name: str) -> Any:
        full = f"{self.__name__}.{name}"
        if full in sys.modules:
            return sys.modules[full]
        if not name.startswith("__") and importlib.util.find_spec(full) is not None:
            return importlib.import_module(full)  # a submodule: no need for the whole package
        if self.__dict__.get("_fluxwatch_loaded"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        self.__dict__["_fluxwatch_loaded"] = True
        spec = self.__spec__
        assert spec is not None
        assert spec.loader is not None
        code = spec.loader.get_code(self.__name__)  # type: ignore[attr-defined]
        exec(code, self.__dict__)  # the package's own __init__, in its own namespace
        if name in self.__dict__:
            return self.__dict__[name]
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")


def _install_lazy_packages() -> bool:
    if any(name in sys.modules for name in _HEAVY):
        return False  # already (being) imported the usual way: leave it alone
    parent: types.ModuleType | None = None
    for name in _HEAVY:
        path = list(parent.__path__) if parent is not None else None
        spec = importlib.util.find_spec(name) if path is None else _find(name, path)
        if spec is None or spec.submodule_search_locations is None:
            for done in _HEAVY:
                sys.modules.pop(done, None)
            return False
        module = _LazyPackage(name)
        module.__spec__ = spec
        module.__loader__ = spec.loader
        module.__file__ = spec.origin
        module.__path__ = list(spec.submodule_search_locations)
        module.__package__ = name
        sys.modules[name] = module
        if parent is not None:
            setattr(parent, name.rpartition(".")[2], module)
        parent = module
    client = sys.modules["kubernetes_asyncio.client"]
    # What ``from kubernetes_asyncio.client import ApiClient, Configuration`` (the config
    # loaders do it) needs, without the rest of the package.
    for attr, submodule in (("ApiClient", "api_client"), ("Configuration", "configuration")):
        setattr(
            client, attr, getattr(importlib.import_module(f"{client.__name__}.{submodule}"), attr)
        )
    return True


def _find(name: str, path: list[str]) -> importlib.machinery.ModuleSpec | None:
    import importlib.machinery

    return importlib.machinery.PathFinder.find_spec(name, path)


LAZY = _install_lazy_packages()

from kubernetes_asyncio import config as kube_config  # noqa: E402
from kubernetes_asyncio.client.api_client import ApiClient  # noqa: E402
from kubernetes_asyncio.client.configuration import Configuration  # noqa: E402
from kubernetes_asyncio.config.kube_config import ConfigNode, KubeConfigLoader  # noqa: E402

__all__ = ["LAZY", "ApiClient", "ConfigNode", "Configuration", "KubeConfigLoader", "kube_config"]
