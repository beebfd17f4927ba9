"""A user's own model, dataset or algorithm, by import path or installed entry point.

A scenario names a plug-in where it would name a built-in: ``model: {name:
mypkg.models:build_net}``, ``data: {dataset: mypkg.data:load}``, ``algorithm: {name:
mypkg.algos:MyFedAlgo}`` (``module:attribute``), or by the name an installed package
registers under the entry-point groups ``fedsim.models``, ``fedsim.datasets`` and
``fedsim.algorithms``. The protocols (docs/plugins.md):

* model: ``build(*, in_channels, num_classes, image_size, **options) -> torch.nn.Module``
  with ``nn.Conv2d`` / ``nn.Linear`` layers (they become fedsim's quantized layers);
* dataset: ``load(*, root, seed, options) -> (train, test)``, two
  :class:`fedsim.data.ArrayDataset` with float32 ``(N, C, H, W)`` images and int64 labels;
* algorithm: a subclass of :class:`fedsim.algorithms.base.Algorithm`; its own scenario keys
  are the fields of an optional pydantic class attribute ``Params``.

Anything that fails to import or breaks its protocol is an
:class:`~fedsim.errors.InputError` naming the scenario key and what was wrong. Worker
processes import plug-ins by the same path, so a plug-in module must be importable there
(installed, or on ``PYTHONPATH``).
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

GROUPS = {"model": "fedsim.models", "dataset": "fedsim.datasets",
          "algorithm": "fedsim.algorithms"}


class PluginError(ValueError):
    """A plug-in reference that cannot be loaded (import error, missing attribute, ...)."""


def is_reference(name: str) -> bool:
    """``module:attribute`` (an import path) rather than a bare name."""
    return ":" in name


def installed(kind: str) -> list[str]:
    """Names registered by installed packages under the kind's entry-point group."""
    return sorted(ep.name for ep in metadata.entry_points(group=GROUPS[kind]))


def resolve(kind: str, name: str) -> Any:
    """The object behind a plug-in reference or an installed entry-point name."""
    if is_reference(name):
        module, _, attr = name.partition(":")
        if not module or not attr:
            raise PluginError(f"'{name}': expected module:attribute (e.g. mypkg.models:build)")
        try:
            obj: Any = importlib.import_module(module)
        except Exception as exc:  # any import-time failure of user code
            raise PluginError(f"cannot import {module}: {type(exc).__name__}: {exc}") from None
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise PluginError(f"{module} has no attribute '{attr}'")
            obj = getattr(obj, part)
        return obj
    for ep in metadata.entry_points(group=GROUPS[kind]):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as exc:
                raise PluginError(f"cannot load the installed {kind} '{name}' ({ep.value}): "
                                  f"{type(exc).__name__}: {exc}") from None
    raise PluginError(f"no {kind} named '{name}'")


def is_plugin(kind: str, name: str) -> bool:
    """A name that is not built in: an import path or an installed entry point."""
    return is_reference(name) or name in installed(kind)


def check_callable(kind: str, name: str) -> Any:
    """Resolve a model or dataset plug-in and check it can be called."""
    obj = resolve(kind, name)
    if not callable(obj):
        raise PluginError(f"{name} is a {type(obj).__name__}, not a function or class that "
                          f"builds a {kind}")
    return obj


def algorithm_plugin(name: str) -> type[Any]:
    """Resolve an algorithm plug-in: a subclass of fedsim's Algorithm (imports torch)."""
    from fedsim.algorithms.base import Algorithm

    cls = resolve("algorithm", name)
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise PluginError(f"{name} is not a subclass of fedsim.algorithms.base.Algorithm")
    params = getattr(cls, "Params", None)
    if params is not None:
        from pydantic import BaseModel

        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise PluginError(f"{name}.Params must be a pydantic model class")
    return cls
