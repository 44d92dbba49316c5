r"""Numeric kernels shared by the whole library: chunked pairwise scores and k-NN search.

Everything here is device-aware (results on the input's device) and
memory-bounded: score matrices are visited in blocks of at most
``max_block_bytes`` (:data:`DEFAULT_BLOCK_BYTES`, 256 MiB) and never built
whole unless a caller asks for the dense matrix (:func:`pairwise_distance`).
faiss is optional and imported lazily (:data:`WITH_FAISS`).
"""

from reidgraph.ops._faiss import WITH_FAISS
from reidgraph.ops.camera_norm import camera_center, camera_means
from reidgraph.ops.k_reciprocal import (
    CONVENTIONS,
    gaussian_encoding,
    jaccard_distance,
    k_reciprocal_expansion,
    k_reciprocal_neighbors,
    list_lengths,
    local_query_expansion,
)
from reidgraph.ops.pairwise import (
    DEFAULT_BLOCK_BYTES,
    METRICS,
    block_shape,
    iter_similarity_blocks,
    iter_similarity_chunks,
    l2_normalize,
    larger_is_better,
    pairwise_distance,
)
from reidgraph.ops.topk import BACKENDS, PRECISIONS, topk

__all__ = [
    "topk",
    "pairwise_distance",
    "iter_similarity_chunks",
    "iter_similarity_blocks",
    "l2_normalize",
    "camera_means",
    "camera_center",
    "larger_is_better",
    "block_shape",
    "DEFAULT_BLOCK_BYTES",
    "METRICS",
    "BACKENDS",
    "PRECISIONS",
    "WITH_FAISS",
    "jaccard_distance",
    "k_reciprocal_neighbors",
    "k_reciprocal_expansion",
    "gaussian_encoding",
    "local_query_expansion",
    "list_lengths",
    "CONVENTIONS",
]
