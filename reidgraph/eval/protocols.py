r"""Visible-infrared evaluation protocols: SYSU-MM01 and RegDB.

Both reuse the general core :func:`reidgraph.eval.rank.rank_metrics`; they
differ from the single-modality protocol only in which gallery entries are
removed, whether the CMC is identity-deduplicated, and how galleries are drawn
over trials (GUR, ICCV 2023, Sec. 4.1 "Evaluation Protocol", following the
SYSU-MM01 and RegDB conventions; GUR code ``sysu_test.py`` / ``regdb_test.py``).

Cameras are 0-based, as everywhere in reidgraph: SYSU-MM01's ``cam1`` ...
``cam6`` are camids ``0`` ... ``5``; the visible cameras are cam1, cam2, cam4,
cam5 (``0, 1, 3, 4``) and the infrared ones cam3, cam6 (``2, 5``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from reidgraph._validation import (
    check_choice,
    check_int,
    check_matrix,
    check_same_length,
    check_vector,
)
from reidgraph.data.datasets.sysu_mm01 import sysu_gallery_indices as reference_gallery_draw
from reidgraph.eval.rank import (
    DEFAULT_MAX_MEMORY,
    Exclusion,
    _check_ids,
    rank_metrics,
)

__all__ = [
    "SYSU_QUERY_CAMS",
    "SYSU_GALLERY_CAMS",
    "SYSU_CAM3_CAM2",
    "REGDB_DIRECTIONS",
    "sysu_gallery_indices",
    "evaluate_sysu",
    "evaluate_regdb",
    "aggregate_trials",
]

#: SYSU-MM01 query cameras (infrared cam3, cam6), 0-based.
SYSU_QUERY_CAMS: tuple[int, ...] = (2, 5)
#: SYSU-MM01 gallery cameras per search mode (visible), 0-based.
SYSU_GALLERY_CAMS: dict[str, tuple[int, ...]] = {"all": (0, 1, 3, 4), "indoor": (0, 1)}
_SYSU_VISIBLE = SYSU_GALLERY_CAMS["all"]
#: RegDB directions: visible query → thermal gallery, and the reverse.
REGDB_DIRECTIONS: tuple[str, ...] = ("v2t", "t2v")
_DEFAULT_RANKS = (1, 5, 10, 20)


def _sysu_cam3_cam2(q_pid: Tensor, g_pid: Tensor, q_camid: Tensor, g_camid: Tensor) -> Tensor:
    # cam3 (IR) and cam2 (RGB) watch the same place, so the original SYSU-MM01
    # protocol drops cam2 gallery images for cam3 queries, whatever the identity.
    return (q_camid == 2) & (g_camid == 1)


#: SYSU-MM01 removal: gallery camera cam2 (camid 1) for query camera cam3
#: (camid 2), for every identity; nothing else is removed.
SYSU_CAM3_CAM2 = Exclusion("sysu_cam3_cam2", _sysu_cam3_cam2, same_pid_only=False)


def _check_camids_in(camid: Tensor, name: str, allowed: Sequence[int], what: str) -> None:
    bad = ~torch.isin(camid, torch.tensor(allowed, device=camid.device))
    if bool(bad.any()):
        found = sorted(set(camid[bad].tolist()))
        raise ValueError(
            f"'{name}' must only hold {what} cameras {list(allowed)} (0-based: cam1..cam6 "
            f"are 0..5), found {found}"
        )


def sysu_gallery_indices(
    g_pid: Any,
    g_camid: Any,
    mode: str = "all",
    seed: int = 0,
    *,
    method: str = "torch",
) -> Tensor:
    r"""Draws a SYSU-MM01 single-shot gallery: one random image per (identity, camera).

    Only the visible cameras of the search mode are used: cam1, cam2, cam4,
    cam5 (camids ``0, 1, 3, 4``) for ``mode="all"`` and cam1, cam2 (``0, 1``)
    for ``mode="indoor"`` (SYSU-MM01 protocol as in GUR, Sec. 4.1; trial
    :math:`t` uses seed :math:`t`).

    Args:
        g_pid (Tensor or ndarray): Identities of the visible gallery pool
            ``[N]``.
        g_camid (Tensor or ndarray): Cameras of the pool ``[N]`` (0-based).
        mode (str, optional): ``"all"`` or ``"indoor"``. (default: :obj:`"all"`)
        seed (int, optional): The trial's seed. (default: :obj:`0`)
        method (str, optional): ``"torch"`` draws with a seeded
            :class:`torch.Generator`, vectorised. ``"python"`` mirrors the
            reference loop (``random.seed(seed)``; identities ascending; cameras
            in the order above; ``random.choice`` over the group's pool entries
            in pool order): it reproduces GUR's galleries when each group's
            pool entries are in sorted file-path order. (default:
            :obj:`"torch"`)

    Returns:
        LongTensor: Selected pool indices ``[G]``, ascending, on the input's
        device; ``G`` = number of (identity, camera) pairs present.

    Example:
        >>> pid = torch.tensor([1, 1, 1, 2, 2]); cam = torch.tensor([0, 0, 3, 0, 2])
        >>> sysu_gallery_indices(pid, cam, "indoor", seed=0).numel()  # (1, cam1), (2, cam1)
        2
    """
    pid = check_vector(g_pid, "g_pid")
    g_pid = _check_ids(pid, "g_pid", pid.numel(), "entries of 'g_pid'", pid.device)
    g_camid = _check_ids(g_camid, "g_camid", pid.numel(), "entries of 'g_pid'", pid.device)
    mode = check_choice(mode, "mode", tuple(SYSU_GALLERY_CAMS))
    seed = check_int(seed, "seed", min_value=0)
    method = check_choice(method, "method", ("torch", "python"))
    cams = SYSU_GALLERY_CAMS[mode]
    dev = g_pid.device
    cand = torch.isin(g_camid, torch.tensor(cams, device=dev)).nonzero().squeeze(1)
    if cand.numel() == 0:
        raise ValueError(
            f"The gallery pool has no image from the {mode!r}-search cameras {list(cams)} "
            f"(0-based); found cameras {sorted(set(g_camid.tolist()))}"
        )
    # Group key: pid-major, camera-minor (the reference loop order).
    _, group = torch.unique(g_pid[cand] * 6 + g_camid[cand], return_inverse=True)
    if method == "python":
        # One implementation of the reference draw, shared with the dataset loader.
        picked = reference_gallery_draw(g_pid.cpu().numpy(), g_camid.cpu().numpy(), mode, seed)
        return torch.sort(torch.as_tensor(picked, dtype=torch.long, device=dev))[0]
    else:
        gen = torch.Generator().manual_seed(seed)
        score = torch.rand(cand.numel(), generator=gen).to(dev)
        # The entry with the smallest random score wins its group.
        by_score = torch.argsort(score)
        by_group = by_score[torch.sort(group[by_score], stable=True)[1]]
        sizes = torch.bincount(group)
        sel = by_group[torch.cumsum(sizes, 0) - sizes]
    return torch.sort(cand[sel])[0]


def aggregate_trials(
    results: Sequence[dict[str, Any]],
    ranks: Sequence[int] = _DEFAULT_RANKS,
    ddof: int = 0,
) -> dict[str, Any]:
    r"""Mean and standard deviation of metrics over trials or splits.

    Used for SYSU-MM01's 10 gallery trials and RegDB's 10 train/test splits
    (one model per split); both report the mean (GUR, Sec. 4.1).

    .. math::
        \bar m = \frac{1}{T}\sum_t m_t, \qquad
        s = \sqrt{\frac{1}{T - \mathrm{ddof}}\sum_t (m_t - \bar m)^2}

    Args:
        results (list[dict]): Outputs of :func:`~reidgraph.eval.rank_metrics`
            (or the protocol functions), each with ``cmc``, ``mAP``, ``mINP``.
        ranks (list[int], optional): CMC ranks to report as ``rank{r}``;
            ranks beyond the CMC length are left out. (default:
            :obj:`(1, 5, 10, 20)`)
        ddof (int, optional): Delta degrees of freedom of the std (0:
            population, as ``numpy.std``). (default: :obj:`0`)

    Returns:
        dict: ``mean`` and ``std`` (dicts keyed ``rank1``, ..., ``mAP``,
        ``mINP``), ``cmc`` (mean CMC tensor), ``num_trials``.

    Example:
        >>> a = {"cmc": torch.tensor([0.5, 1.0]), "mAP": 0.4, "mINP": 0.2}
        >>> b = {"cmc": torch.tensor([0.7, 1.0]), "mAP": 0.6, "mINP": 0.4}
        >>> agg = aggregate_trials([a, b], ranks=(1,))
        >>> round(agg["mean"]["rank1"], 6), round(agg["std"]["mAP"], 6)
        (0.6, 0.1)
    """
    if isinstance(results, dict) or not isinstance(results, Sequence) or len(results) == 0:
        raise ValueError(
            f"'results' must be a non-empty list of metric dicts, got {type(results).__name__}"
            + (" of length 0" if isinstance(results, Sequence) else "")
        )
    ranks = [check_int(r, "ranks", min_value=1) for r in ranks]
    ddof = check_int(
        ddof, "ddof", min_value=0, max_value=len(results) - 1, max_reason=f"{len(results)} trial(s)"
    )
    for i, res in enumerate(results):
        missing = {"cmc", "mAP", "mINP"} - set(res)
        if missing:
            raise ValueError(f"'results[{i}]' lacks the keys {sorted(missing)}")
    check_same_length(**{f"results[{i}]['cmc']": r["cmc"] for i, r in enumerate(results)})
    cmc = torch.stack([torch.as_tensor(r["cmc"]).float().cpu() for r in results])
    columns = {f"rank{r}": cmc[:, r - 1].double() for r in ranks if r <= cmc.size(1)}
    columns["mAP"] = torch.tensor([float(r["mAP"]) for r in results], dtype=torch.float64)
    columns["mINP"] = torch.tensor([float(r["mINP"]) for r in results], dtype=torch.float64)
    n = len(results)
    mean = {k: float(v.mean()) for k, v in columns.items()}
    std = {
        k: math.sqrt(float(((v - v.mean()) ** 2).sum()) / (n - ddof)) if n - ddof > 0 else 0.0
        for k, v in columns.items()
    }
    return {"mean": mean, "std": std, "cmc": cmc.mean(0), "num_trials": n}


def evaluate_sysu(
    distmat: Any,
    q_pid: Any,
    g_pid: Any,
    q_camid: Any,
    g_camid: Any,
    mode: str = "all",
    trials: int = 10,
    max_rank: int = 20,
    *,
    method: str = "python",
    chunk_size: int | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> dict[str, Any]:
    r"""SYSU-MM01 evaluation: infrared queries against random single-shot visible galleries.

    Protocol (SYSU-MM01, as in GUR Sec. 4.1 and ``sysu_test.py``):

    * query: all infrared images (cam3, cam6) of the test identities, both modes;
    * gallery, trial :math:`t = 0, \dots, T-1`: one random visible image per
      (identity, camera) drawn with seed :math:`t` by
      :func:`sysu_gallery_indices` from cameras cam1, cam2, cam4, cam5
      (``mode="all"``) or cam1, cam2 (``mode="indoor"``);
    * removal: only gallery cam2 images for cam3 queries
      (:data:`SYSU_CAM3_CAM2`); no same-identity-same-camera removal;
    * CMC on the identity-deduplicated ranked list (first entry of each
      identity kept), mAP and mINP on the full list
      (:func:`~reidgraph.eval.rank_metrics` with ``dedup_cmc=True``);
    * reported: mean (and std) over the trials.

    Args:
        distmat (Tensor or ndarray): Distances from the queries to the whole
            visible gallery pool ``[N_q, N_pool]``; each trial picks columns.
        q_pid (Tensor or ndarray): Query identities ``[N_q]``.
        g_pid (Tensor or ndarray): Pool identities ``[N_pool]``.
        q_camid (Tensor or ndarray): Query cameras ``[N_q]``, each 2 or 5.
        g_camid (Tensor or ndarray): Pool cameras ``[N_pool]``, each in
            ``{0, 1, 3, 4}``.
        mode (str, optional): ``"all"`` or ``"indoor"``. (default: :obj:`"all"`)
        trials (int, optional): Number of gallery draws, seeds ``0..trials-1``.
            (default: :obj:`10`)
        max_rank (int, optional): CMC length. (default: :obj:`20`)
        method (str, optional): Gallery draw, see :func:`sysu_gallery_indices`.
            The default ``"python"`` repeats the reference draws, so with the
            pool in :func:`reidgraph.data.load_sysu_mm01` order (identity,
            camera, file name) every trial's gallery equals GUR's image for
            image and results are comparable trial by trial; ``"torch"`` is a
            vectorised draw with the same distribution. (default:
            :obj:`"python"`)
        chunk_size (int, optional): Queries per chunk. (default: :obj:`None`)
        max_memory (int, optional): Bytes per chunk. (default: 256 MiB)

    Returns:
        dict: ``mean`` / ``std`` (``rank1``, ``rank5``, ``rank10``, ``rank20``,
        ``mAP``, ``mINP``), mean ``cmc``, ``num_trials``, ``mode`` and
        ``trials`` (per-trial results, each with its ``gallery_index``).

    Example:
        >>> d = torch.tensor([[0.1, 0.9], [0.8, 0.2]])
        >>> out = evaluate_sysu(d, [1, 2], [1, 2], [2, 5], [0, 3], trials=2, max_rank=2)
        >>> out["mean"]["rank1"], out["mean"]["mAP"]
        (1.0, 1.0)
    """
    distmat = check_matrix(distmat, "distmat")
    nq, npool = distmat.shape
    dev = distmat.device
    q_pid = _check_ids(q_pid, "q_pid", nq, "rows of 'distmat'", dev)
    q_camid = _check_ids(q_camid, "q_camid", nq, "rows of 'distmat'", dev)
    g_pid = _check_ids(g_pid, "g_pid", npool, "columns of 'distmat'", dev)
    g_camid = _check_ids(g_camid, "g_camid", npool, "columns of 'distmat'", dev)
    _check_camids_in(q_camid, "q_camid", SYSU_QUERY_CAMS, "infrared (cam3, cam6)")
    _check_camids_in(g_camid, "g_camid", _SYSU_VISIBLE, "visible (cam1, cam2, cam4, cam5)")
    mode = check_choice(mode, "mode", tuple(SYSU_GALLERY_CAMS))
    trials = check_int(trials, "trials", min_value=1)
    results = []
    for t in range(trials):
        idx = sysu_gallery_indices(g_pid, g_camid, mode, seed=t, method=method)
        res = rank_metrics(
            distmat[:, idx],
            q_pid,
            g_pid[idx],
            q_camid,
            g_camid[idx],
            max_rank=max_rank,
            exclude=SYSU_CAM3_CAM2,
            dedup_cmc=True,
            chunk_size=chunk_size,
            max_memory=max_memory,
        )
        res["gallery_index"] = idx
        results.append(res)
    out = aggregate_trials(results, ranks=_DEFAULT_RANKS)
    out["mode"] = mode
    out["trials"] = results
    return out


def evaluate_regdb(
    distmat: Any,
    q_pid: Any,
    g_pid: Any,
    direction: str = "v2t",
    max_rank: int = 20,
    *,
    q_modality: Any = None,
    g_modality: Any = None,
    chunk_size: int | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> dict[str, Any]:
    r"""RegDB evaluation of one split in one direction.

    RegDB has one visible and one thermal camera; queries and gallery come
    from different cameras, so nothing is removed, and the CMC is the plain
    (not deduplicated) one (GUR Sec. 4.1 and ``regdb_test.py``).
    ``direction="v2t"``: visible queries, thermal gallery; ``"t2v"``: the
    reverse. The 10 splits are evaluated with one model each and averaged
    with :func:`aggregate_trials`.

    Args:
        distmat (Tensor or ndarray): Query x gallery distances ``[N_q, N_g]``.
        q_pid (Tensor or ndarray): Query identities ``[N_q]``.
        g_pid (Tensor or ndarray): Gallery identities ``[N_g]``.
        direction (str, optional): ``"v2t"`` or ``"t2v"``. (default:
            :obj:`"v2t"`)
        max_rank (int, optional): CMC length. (default: :obj:`20`)
        q_modality (Tensor or ndarray, optional): Query modalities ``[N_q]``
            (0 visible, 1 infrared); if given, checked against ``direction``.
            (default: :obj:`None`)
        g_modality (Tensor or ndarray, optional): Gallery modalities ``[N_g]``,
            checked likewise. (default: :obj:`None`)
        chunk_size (int, optional): Queries per chunk. (default: :obj:`None`)
        max_memory (int, optional): Bytes per chunk. (default: 256 MiB)

    Returns:
        dict: as :func:`~reidgraph.eval.rank_metrics`, plus ``direction``.

    Example:
        >>> d = torch.tensor([[0.3, 0.1], [0.2, 0.4]])
        >>> out = evaluate_regdb(d, [1, 2], [2, 1], direction="t2v", max_rank=2)
        >>> out["mAP"], out["direction"]
        (1.0, 't2v')
    """
    direction = check_choice(direction, "direction", REGDB_DIRECTIONS)
    distmat = check_matrix(distmat, "distmat")
    nq, ng = distmat.shape
    want_q, want_g = (0, 1) if direction == "v2t" else (1, 0)
    for name, value, want, n, of in (
        ("q_modality", q_modality, want_q, nq, "rows of 'distmat'"),
        ("g_modality", g_modality, want_g, ng, "columns of 'distmat'"),
    ):
        if value is None:
            continue
        mod = _check_ids(value, name, n, of, distmat.device)
        if bool((mod != want).any()):
            kind = "visible (0)" if want == 0 else "infrared/thermal (1)"
            raise ValueError(
                f"direction={direction!r} needs '{name}' to be all {kind}, found values "
                f"{sorted(set(mod.tolist()))}"
            )
    out = rank_metrics(
        distmat,
        q_pid,
        g_pid,
        max_rank=max_rank,
        exclude=None,
        chunk_size=chunk_size,
        max_memory=max_memory,
    )
    out["direction"] = direction
    return out
