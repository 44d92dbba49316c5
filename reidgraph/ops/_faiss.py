r"""Lazy, optional faiss backend for :func:`reidgraph.ops.topk`.

faiss is imported on first use, not when :mod:`reidgraph` is imported, and
the outcome is cached (:data:`WITH_FAISS` says whether the package is
installed, in the spirit of PyG's ``WITH_*`` flags in
``torch_geometric/typing.py``). A broken install is reported as a warning
once and treated as missing.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import warnings
from types import ModuleType

import numpy as np
import torch

__all__ = ["WITH_FAISS", "load_faiss", "require_faiss", "faiss_has_gpu", "faiss_search"]

logger = logging.getLogger(__name__)

#: Whether the ``faiss`` package is installed (found without importing it).
WITH_FAISS: bool = importlib.util.find_spec("faiss") is not None

_INSTALL_HINT = "pip install faiss-cpu"
# GPU faiss' flat and IVF k-selection kernels stop at this k (faiss/gpu/utils/DeviceDefs.cuh).
_GPU_MAX_K = 2048

_state: dict[str, object] = {}


def load_faiss() -> ModuleType | None:
    r"""Returns the imported ``faiss`` module, or :obj:`None` when unavailable.

    Imported once and cached; later calls are free.
    """
    if "module" not in _state:
        module = None
        if WITH_FAISS:
            try:
                import faiss

                module = faiss
            except Exception as exc:  # a broken wheel should not break reidgraph
                warnings.warn(
                    f"faiss is installed but failed to import ({exc!r}); falling back to "
                    "the torch backend",
                    stacklevel=2,
                )
        _state["module"] = module
    return _state["module"]  # type: ignore[return-value]


def require_faiss() -> ModuleType:
    r"""Returns ``faiss`` or raises :class:`ImportError` naming the pip command."""
    faiss = load_faiss()
    if faiss is None:
        raise ImportError(
            f"backend='faiss' requires the 'faiss' package; install it with "
            f"`{_INSTALL_HINT}` (or faiss-gpu-cu12 for GPU search), or use backend='torch'"
        )
    return faiss


def faiss_has_gpu(faiss: ModuleType) -> bool:
    r"""Whether this faiss build has GPU support and sees at least one GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _gpu_resources(faiss: ModuleType) -> object:
    # One StandardGpuResources per process: creating it allocates scratch memory.
    if "gpu_res" not in _state:
        _state["gpu_res"] = faiss.StandardGpuResources()
    return _state["gpu_res"]


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())


def default_nlist(n_database: int) -> int:
    r"""IVF list count :math:`\lceil 4 \sqrt{N_d} \rceil`, capped so that each
    list gets about 39 training points (faiss warns below that)."""
    return max(1, min(math.ceil(4.0 * math.sqrt(n_database)), n_database // 39))


def faiss_search(
    a: torch.Tensor,
    b: torch.Tensor,
    k: int,
    metric: str,
    *,
    approximate: bool = False,
    nlist: int | None = None,
    nprobe: int = 8,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""k-NN of the rows of ``a`` among the rows of ``b`` with faiss.

    ``a`` and ``b`` are already validated and, for ``"cosine"``, normalised
    (``b is a`` for all-vs-all search); ``"cosine"`` and ``"ip"`` search by
    inner product, ``"euclidean"`` by squared L2. Exact search uses
    ``IndexFlatIP`` / ``IndexFlatL2``; ``approximate=True`` uses
    ``IndexIVFFlat`` with ``nlist`` lists (k-means seeded with ``seed``) and
    ``nprobe`` lists visited per query. CUDA inputs use GPU faiss when the
    build supports it (and ``k <= 2048``), else the CPU index. Returns
    ``(scores float32, indices int64)`` on ``a``'s device.
    """
    faiss = require_faiss()
    d = a.size(1)
    faiss_metric = faiss.METRIC_L2 if metric == "euclidean" else faiss.METRIC_INNER_PRODUCT
    flat_cls = faiss.IndexFlatL2 if metric == "euclidean" else faiss.IndexFlatIP
    db = _to_numpy(b)
    queries = db if a is b else _to_numpy(a)
    if approximate:
        quantizer = flat_cls(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss_metric)
        index.cp.seed = seed  # k-means init and training subsample
        # Unit-norm data is best split by unit-norm centroids (spherical k-means).
        index.cp.spherical = metric == "cosine"
        index.train(db)
        index.add(db)
        index.nprobe = nprobe
    else:
        index = flat_cls(d)
        index.add(db)
    if a.is_cuda:
        if faiss_has_gpu(faiss) and k <= _GPU_MAX_K:
            index = faiss.index_cpu_to_gpu(_gpu_resources(faiss), a.device.index or 0, index)
        else:
            logger.info(
                "faiss search runs on the CPU for CUDA input (GPU faiss %s)",
                "missing" if not faiss_has_gpu(faiss) else f"limited to k <= {_GPU_MAX_K}",
            )
    scores, indices = index.search(queries, k)
    scores_t = torch.from_numpy(scores).to(a.device)
    indices_t = torch.from_numpy(indices.astype(np.int64, copy=False)).to(a.device)
    if approximate:
        missing = int((indices_t < 0).sum())
        if missing:
            logger.warning(
                "IVF search found fewer than k=%d candidates for some queries (%d empty "
                "slots, index -1); raise nprobe (%d of nlist=%d lists probed)",
                k,
                missing,
                nprobe,
                nlist,
            )
            fill = math.inf if metric == "euclidean" else -math.inf
            scores_t = scores_t.masked_fill(indices_t < 0, fill)
    return scores_t, indices_t
