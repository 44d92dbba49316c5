r"""One entry point for every dataset layout, and a registry for user datasets.

``load_dataset(name, root, **options)`` resolves ``name`` among the
registered loaders (the five built-in layouts plus anything added with
:func:`register_dataset`) and returns a
:class:`~reidgraph.data.records.ReIDDataset`. Datasets are the one place the
library keeps a registry, because users add their own (as torchreid's
``register_image_dataset``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

from reidgraph.data.datasets import (
    load_dukemtmc,
    load_market1501,
    load_msmt17,
    load_regdb,
    load_sysu_mm01,
)
from reidgraph.data.records import ReIDDataset

__all__ = ["load_dataset", "register_dataset", "unregister_dataset", "dataset_names"]

DatasetLoader = Callable[..., ReIDDataset]

_BUILTIN: dict[str, DatasetLoader] = {
    "market1501": load_market1501,
    "dukemtmc": load_dukemtmc,
    "msmt17": load_msmt17,
    "sysu_mm01": load_sysu_mm01,
    "regdb": load_regdb,
}
_REGISTRY: dict[str, DatasetLoader] = dict(_BUILTIN)


def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"'name' must be a str, got {type(name).__name__}")
    key = name.strip().lower()
    if not key:
        raise ValueError("'name' must be a non-empty string, got ''")
    return key


def dataset_names() -> list[str]:
    r"""The names :func:`load_dataset` accepts, sorted."""
    return sorted(_REGISTRY)


def register_dataset(name: str, loader: DatasetLoader | None = None, *, overwrite: bool = False):
    r"""Registers a dataset loader under ``name`` (case-insensitive).

    ``loader(root, **options)`` must return a
    :class:`~reidgraph.data.records.ReIDDataset` (a function, or a class whose
    construction yields one). Without ``loader`` this returns a decorator.

    Args:
        name (str): The name for :func:`load_dataset`.
        loader (callable, optional): The loader. (default: :obj:`None`,
            decorator form)
        overwrite (bool, optional): Replace an existing registration (a
            built-in name included). (default: :obj:`False`)

    Returns:
        The loader (so the decorator leaves the function unchanged).

    Example:
        >>> @register_dataset("my_cams")  # doctest: +SKIP
        ... def load_my_cams(root, **options):
        ...     ...  # build and return a ReIDDataset
    """
    key = _check_name(name)

    def add(fn: DatasetLoader) -> DatasetLoader:
        if not callable(fn):
            raise TypeError(
                f"'loader' for dataset {key!r} must be callable, got {type(fn).__name__}"
            )
        if key in _REGISTRY and not overwrite and _REGISTRY[key] is not fn:
            raise ValueError(
                f"Dataset {key!r} is already registered ({_REGISTRY[key]!r}); pass "
                "overwrite=True to replace it"
            )
        _REGISTRY[key] = fn
        return fn

    return add if loader is None else add(loader)


def unregister_dataset(name: str) -> None:
    r"""Removes a user registration (built-in names are restored, not removed)."""
    key = _check_name(name)
    if key not in _REGISTRY:
        raise ValueError(f"Could not resolve name={name!r} among choices {dataset_names()}")
    if key in _BUILTIN:
        _REGISTRY[key] = _BUILTIN[key]
    else:
        del _REGISTRY[key]


def load_dataset(name: str, root: str | os.PathLike, **options: Any) -> ReIDDataset:
    r"""Loads a re-ID dataset from its on-disk layout.

    Built-in names and their options (defaults follow each dataset's
    standard protocol; ``datasets/README.md`` shows every layout):

    - ``"market1501"``: ``verify_images``, ``session_chaining``.
    - ``"dukemtmc"``: ``verify_images``.
    - ``"msmt17"``: ``version``, ``use_val``, ``fps``, ``verify_images``.
    - ``"sysu_mm01"``: ``mode`` (``"all"`` / ``"indoor"``), ``trial`` (0..9),
      ``verify_images``.
    - ``"regdb"``: ``trial`` (1..10), ``direction`` (``"v2t"`` / ``"t2v"``),
      ``verify_images``.

    All accept ``verbose``. Records keep each image's original file, as an
    absolute path.

    Args:
        name (str): A name from :func:`dataset_names` (case-insensitive).
        root (str or os.PathLike): The dataset folder.
        **options: Passed to the loader.

    Returns:
        ReIDDataset: ``train`` / ``query`` / ``gallery`` splits.

    Raises:
        ValueError: Unknown ``name`` (the error lists the choices).
        TypeError: An option the loader does not take (the error lists
            those it does), or a loader that returns something else.

    Example:
        >>> ds = load_dataset("market1501", "/data/Market-1501-v15.09.15")  # doctest: +SKIP
        >>> ds = load_dataset("sysu_mm01", "/data/SYSU-MM01", mode="indoor")  # doctest: +SKIP
    """
    key = _check_name(name)
    if key not in _REGISTRY:
        raise ValueError(f"Could not resolve name={name!r} among choices {dataset_names()}")
    loader = _REGISTRY[key]
    try:
        sig = inspect.signature(loader)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signature
        sig = None
    if sig is not None and not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()
    ):
        params = list(sig.parameters.values())
        # The first positional parameter receives ``root``.
        if params and params[0].kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            params = params[1:]
        accepted = [
            p.name
            for p in params
            if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise TypeError(
                f"Dataset {key!r} does not take option(s) {unknown}; it accepts {accepted}"
            )
    dataset = loader(root, **options)
    if not isinstance(dataset, ReIDDataset):
        raise TypeError(
            f"The loader registered for dataset {key!r} must return a ReIDDataset, "
            f"got {type(dataset).__name__}"
        )
    return dataset
