r"""The ``.npz`` files of ``reidgraph rerank``: your own features in, rankings out.

**Input schema** (one ``numpy.savez`` archive; ``N_q`` queries, ``N_g``
gallery images, ``N_t`` training images, feature size ``d``):

======================  ===========  =========  ==========================================
key                     shape        dtype      needed for
======================  ===========  =========  ==========================================
``query_features``      [N_q, d]     float      always
``gallery_features``    [N_g, d]     float      always
``query_camids``        [N_q]        integer    ``tlift``; ``gfusion`` with train data;
                                                metrics (with pids)
``gallery_camids``      [N_g]        integer    same
``query_times``         [N_q]        float      ``tlift``; ``gfusion`` with train data
``gallery_times``       [N_g]        float      same
``query_pids``          [N_q]        integer    metrics (optional; -1 = unknown)
``gallery_pids``        [N_g]        integer    metrics (optional)
``train_features``      [N_t, d]     float      ``gfusion``: fit :math:`T(a, b)`;
                                                ``tlift``: calibrate scores (optional)
``train_camids``        [N_t]        integer    with ``train_features``
``train_times``         [N_t]        float      with ``train_features``
``train_pids``          [N_t]        integer    ``tlift``: Platt scaling of the scores
                                                (optional)
======================  ===========  =========  ==========================================

Camera ids are 0-based integers (:math:`\ge 0`); times are seconds on one
clock per camera network (``frame / fps``); features need not be
normalised. ``train_features``, ``train_camids`` and ``train_times`` come
together or not at all (``train_pids`` may join them); without them
``gfusion`` builds the visual-only graph. Unknown keys are refused
(a typo such as ``query_camid`` would otherwise be silently ignored).

**Output schema** (:func:`save_ranking`): ``method`` (string),
``ranked_index`` ``[N_q, k]`` int64 gallery indices best first and its
values (``ranked_distance`` or ``ranked_similarity``), and, unless left out,
the full matrix as ``distance`` (smaller is better: ``k_reciprocal``,
``gfusion``, ``baseline``) or ``similarity`` (larger is better:
``tlift``).
"""

from __future__ import annotations

import os
import zipfile
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from reidgraph._validation import check_int, check_matrix

__all__ = [
    "SCHEMA",
    "SPLITS",
    "load_features",
    "save_features",
    "check_requirements",
    "save_ranking",
    "load_ranking",
]

#: Splits stored in a feature archive, in order.
SPLITS: tuple[str, ...] = ("query", "gallery", "train")

#: Every allowed key: ``(shape, dtype kind, spine attribute)``.
SCHEMA: dict[str, tuple[str, str, str]] = {
    f"{split}_{field}": (shape.format(n=n), kind, attr)
    for split, n in (("query", "N_q"), ("gallery", "N_g"), ("train", "N_t"))
    for field, shape, kind, attr in (
        ("features", "[{n}, d]", "float", "x"),
        ("camids", "[{n}]", "integer", "camid"),
        ("times", "[{n}]", "float", "time"),
        ("pids", "[{n}]", "integer", "pid"),
    )
}

_REQUIRED = ("query_features", "gallery_features")


def _describe(key: str) -> str:
    shape, kind, _ = SCHEMA[key]
    return f"'{key}' {shape} {kind}"


def _vector(value: np.ndarray, key: str, length: int, features: str) -> Tensor:
    shape, kind, _ = SCHEMA[key]
    if value.ndim != 1 or value.shape[0] != length:
        raise ValueError(
            f"'{key}' must have shape {shape} = [{length}] (one entry per row of '{features}'), "
            f"got shape {tuple(value.shape)}"
        )
    if kind == "integer":
        if not np.issubdtype(value.dtype, np.integer):
            # Accept integral floats (MATLAB exports), refuse anything else.
            if not (
                np.issubdtype(value.dtype, np.floating)
                and np.isfinite(value).all()
                and (value == np.round(value)).all()
            ):
                raise TypeError(f"'{key}' must hold integers, got dtype {value.dtype}")
        value = value.astype(np.int64)
        if key.endswith("camids") and value.size and value.min() < 0:
            raise ValueError(f"'{key}' must hold 0-based camera ids >= 0, found {value.min()}")
        return torch.from_numpy(value)
    if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
        raise TypeError(f"'{key}' must hold numbers (seconds), got dtype {value.dtype}")
    value = value.astype(np.float64)
    bad = ~np.isfinite(value)
    if bad.any():
        raise ValueError(
            f"'{key}' must hold finite seconds, found {int(bad.sum())} NaN or infinite "
            f"entr{'y' if bad.sum() == 1 else 'ies'} (first at row {int(np.flatnonzero(bad)[0])})"
        )
    return torch.from_numpy(value)


def load_features(path: str | os.PathLike) -> dict[str, Data]:
    r"""Reads and validates a feature archive of the schema above.

    Args:
        path (str): The ``.npz`` file.

    Returns:
        dict[str, torch_geometric.data.Data]: ``"query"``, ``"gallery"`` and,
        when present, ``"train"``, each a spine ``Data`` with ``x`` (float32)
        and whichever of ``camid`` (long), ``time`` (float64), ``pid`` (long)
        the file holds.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not an ``.npz`` archive, unknown or missing keys, shapes
            that do not match, NaN/inf values, incomplete ``train_*`` keys.
        TypeError: Wrong dtypes (e.g. float camera ids, object arrays).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "f.npz")
        >>> np.savez(path, query_features=np.ones((2, 4)), gallery_features=np.ones((3, 4)))
        >>> load_features(path)["gallery"].x.shape
        torch.Size([3, 4])
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"feature file {path!r} does not exist")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{path!r} is not a readable .npz archive (write it with numpy.savez): {exc}"
        ) from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{path!r} holds a single array, not an .npz archive of named arrays; write it with "
            "numpy.savez(path, query_features=..., gallery_features=..., ...)"
        )
    with archive:
        keys = set(archive.files)
        unknown = sorted(keys - set(SCHEMA))
        if unknown:
            raise ValueError(
                f"{path!r} has unknown key(s) {unknown}; allowed keys are {sorted(SCHEMA)} "
                "(see reidgraph.rerank.npz for the schema)"
            )
        missing = [k for k in _REQUIRED if k not in keys]
        if missing:
            raise ValueError(
                f"{path!r} is missing required key(s) {[_describe(k) for k in missing]}; "
                f"it has {sorted(keys)}"
            )
        train_keys = [k for k in ("train_features", "train_camids", "train_times") if k in keys]
        if train_keys and len(train_keys) != 3:
            lacking = sorted({"train_features", "train_camids", "train_times"} - set(train_keys))
            raise ValueError(
                f"{path!r} has {train_keys} but not {lacking}: the training split needs "
                "features, camera ids and times together (to fit the transition sets of "
                "G-Fusion Eq. 3), or none of them"
            )
        if "train_pids" in keys and not train_keys:
            raise ValueError(
                f"{path!r} has 'train_pids' but no 'train_features', 'train_camids', "
                "'train_times': identities need the training split they label"
            )
        try:
            arrays = {k: archive[k] for k in keys}
        except ValueError as exc:  # object arrays need pickle, which we refuse
            raise TypeError(f"{path!r} holds an object array (not allowed): {exc}") from exc

    out: dict[str, Data] = {}
    dim = None
    for split in SPLITS:
        fkey = f"{split}_features"
        if fkey not in arrays:
            continue
        feats = arrays[fkey]
        if feats.dtype.kind not in "fiu":
            raise TypeError(f"'{fkey}' must hold numbers, got dtype {feats.dtype}")
        x = check_matrix(torch.from_numpy(np.ascontiguousarray(feats)), fkey).float()
        if dim is not None and x.size(1) != dim:
            raise ValueError(
                f"'{fkey}' must have the query features' dimension d = {dim}, got shape "
                f"{tuple(x.shape)}"
            )
        dim = x.size(1)
        data = Data(x=x)
        for field in ("camids", "times", "pids"):
            key = f"{split}_{field}"
            if key in arrays:
                data[SCHEMA[key][2]] = _vector(arrays[key], key, x.size(0), fkey)
        out[split] = data
    return out


def check_requirements(data: dict[str, Data], method: str) -> None:
    r"""Raises a :class:`ValueError` naming the keys ``method`` needs but the
    archive lacks.

    ``"tlift"`` needs camera ids and times of queries and gallery;
    ``"gfusion"`` needs them too when the archive has a training split;
    ``"k_reciprocal"`` needs only features; metrics (when pids are present)
    need pids and camera ids of both.

    Example:
        >>> d = {"query": Data(x=torch.ones(1, 2)), "gallery": Data(x=torch.ones(2, 2))}
        >>> check_requirements(d, "k_reciprocal")
    """
    need: list[str] = []
    if method == "tlift" or (method == "gfusion" and "train" in data):
        why = "TLift (QAConv-TLift Eq. 3)" if method == "tlift" else "spatio-temporal G-Fusion"
        need = [
            f"{s}_{f}"
            for s in ("query", "gallery")
            for f in ("camids", "times")
            if getattr(data[s], SCHEMA[f"{s}_{f}"][2], None) is None
        ]
        if need:
            raise ValueError(f"{why} needs {[_describe(k) for k in need]}; the archive lacks them")
    pids = [s for s in ("query", "gallery") if getattr(data[s], "pid", None) is not None]
    if len(pids) == 1:
        other = "gallery" if pids[0] == "query" else "query"
        raise ValueError(
            f"'{pids[0]}_pids' is given but '{other}_pids' is not: metrics need both (or drop "
            "both to skip the evaluation)"
        )
    if pids:
        need = [
            f"{s}_camids" for s in ("query", "gallery") if getattr(data[s], "camid", None) is None
        ]
        if need:
            raise ValueError(
                f"metrics (pids are given) need {[_describe(k) for k in need]} to remove "
                "same-identity same-camera gallery images (single-query protocol)"
            )


def save_features(
    path: str | os.PathLike, query: Data, gallery: Data, train: Data | None = None
) -> None:
    r"""Writes spine ``Data`` (``x`` and any of ``camid``, ``time``, ``pid``)
    as a feature archive of the schema above, e.g. to try
    ``reidgraph rerank`` on the synthetic world.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "f.npz")
        >>> q = Data(x=torch.ones(2, 4), camid=torch.tensor([0, 1]))
        >>> save_features(path, q, Data(x=torch.ones(3, 4), camid=torch.tensor([0, 1, 1])))
        >>> sorted(np.load(path).files)
        ['gallery_camids', 'gallery_features', 'query_camids', 'query_features']
    """
    arrays: dict[str, np.ndarray] = {}
    for split, data in (("query", query), ("gallery", gallery), ("train", train)):
        if data is None:
            continue
        if not isinstance(data, Data) or getattr(data, "x", None) is None:
            raise TypeError(
                f"'{split}' must be a Data with features 'x', got {type(data).__name__}"
            )
        for key, (_, _, attr) in SCHEMA.items():
            if key.startswith(f"{split}_") and getattr(data, attr, None) is not None:
                value = data[attr]
                value = value.detach().cpu().numpy() if isinstance(value, Tensor) else value
                arrays[key] = np.asarray(value)
    np.savez(os.fspath(path), **arrays)


def save_ranking(
    path: str | os.PathLike,
    matrix: Any,
    *,
    method: str,
    larger_is_better: bool,
    top_k: int = 100,
    save_matrix: bool = True,
    chunk_size: int = 1024,
) -> dict[str, np.ndarray]:
    r"""Writes a query × gallery ranking as an ``.npz`` of the output schema.

    The top-:math:`k` lists come from a stable sort of each chunk of
    queries (ties keep the lower gallery index first, the order
    :func:`reidgraph.eval.evaluate` ranks by); memory :math:`O(\text{chunk}
    \cdot N_g)` besides the matrix.

    Args:
        path (str): Output file.
        matrix (torch.Tensor or numpy.ndarray): ``[N_q, N_g]`` distance or
            similarity.
        method (str): Stored as ``method``.
        larger_is_better (bool): :obj:`True` for a similarity.
        top_k (int, optional): Length of ``ranked_index`` (clipped to
            :math:`N_g`); 0 stores no lists. (default: :obj:`100`)
        save_matrix (bool, optional): Store the full matrix. (default:
            :obj:`True`)
        chunk_size (int, optional): Queries per top-k chunk. (default: 1024)

    Returns:
        dict[str, numpy.ndarray]: What was written.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "r.npz")
        >>> out = save_ranking(path, np.array([[0.3, 0.1, 0.2]]), method="x",
        ...                    larger_is_better=False, top_k=2)
        >>> out["ranked_index"].tolist()
        [[1, 2]]
    """
    m = check_matrix(matrix, "matrix")
    top_k = check_int(top_k, "top_k", min_value=0)
    chunk_size = check_int(chunk_size, "chunk_size", min_value=1)
    if not top_k and not save_matrix:
        raise ValueError("nothing to save: top_k=0 and save_matrix=False")
    name = "similarity" if larger_is_better else "distance"
    out: dict[str, np.ndarray] = {"method": np.array(method)}
    k = min(top_k, m.size(1))
    if k:
        idx, val = [], []
        for s in range(0, m.size(0), chunk_size):
            block = m[s : s + chunk_size]
            # A stable sort keeps tied gallery images in index order, as evaluation does.
            order = torch.sort(block, dim=1, descending=larger_is_better, stable=True).indices
            order = order[:, :k]
            idx.append(order)
            val.append(torch.gather(block, 1, order))
        out["ranked_index"] = torch.cat(idx).cpu().numpy().astype(np.int64)
        out[f"ranked_{name}"] = torch.cat(val).cpu().numpy()
    if save_matrix:
        out[name] = m.detach().cpu().numpy().astype(np.float32, copy=False)
    np.savez(os.fspath(path), **out)
    return out


def load_ranking(path: str | os.PathLike) -> dict[str, np.ndarray]:
    r"""Reads an archive written by :func:`save_ranking` (all arrays).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "r.npz")
        >>> _ = save_ranking(path, np.array([[0.3, 0.1]]), method="x", larger_is_better=False)
        >>> str(load_ranking(path)["method"])
        'x'
    """
    with np.load(os.fspath(path), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
