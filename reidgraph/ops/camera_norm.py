r"""Per-camera feature centring: removing the camera's share of a feature.

IICS (Eq. 3) models a detection's appearance as identity + camera +
noise, :math:`f = A_p + S_c + E_n`. Subtracting an estimate of the camera
term :math:`S_c` — the mean feature of camera :math:`c` over a reference set
— and re-normalising removes the part of the distance that comes from the
camera rather than the person. It is a label-free, training-free baseline
that any unsupervised method should beat.
"""

from __future__ import annotations

from typing import Any

import torch

from reidgraph._validation import check_matrix, check_vector
from reidgraph.ops.pairwise import l2_normalize

__all__ = ["camera_means", "camera_center"]


def camera_means(x: Any, camid: Any, num_cameras: int | None = None) -> torch.Tensor:
    r"""Mean feature of every camera.

    .. math::
        \bar{S}_c = \frac{1}{|\{i : c_i = c\}|} \sum_{i : c_i = c} x_i

    Args:
        x (torch.Tensor): Features :math:`[N, d]`.
        camid (torch.Tensor): Camera of each row :math:`[N]`, 0-based.
        num_cameras (int, optional): Number of cameras :math:`C`.
            (default: :obj:`camid.max() + 1`)

    Returns:
        torch.Tensor: :math:`[C, d]` means. Every camera must have a sample.

    Example:
        >>> camera_means(torch.tensor([[1., 0.], [3., 0.], [0., 2.]]), torch.tensor([0, 0, 1]))
        tensor([[2., 0.],
                [0., 2.]])
    """
    x = check_matrix(x, "x")
    camid = check_vector(camid, "camid", length=x.size(0), length_of="rows of 'x'")
    camid = camid.to(device=x.device, dtype=torch.long)
    if bool((camid < 0).any()):
        raise ValueError(f"'camid' must be >= 0, got minimum {int(camid.min())}")
    n_cam = int(camid.max()) + 1 if num_cameras is None else int(num_cameras)
    if int(camid.max()) >= n_cam:
        raise ValueError(f"'camid' holds camera {int(camid.max())} but num_cameras={n_cam}")
    counts = torch.bincount(camid, minlength=n_cam)
    if bool((counts == 0).any()):
        empty = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(
            f"every camera needs at least one sample in 'x'; cameras {empty} have none"
        )
    sums = torch.zeros(n_cam, x.size(1), dtype=x.dtype, device=x.device)
    sums.index_add_(0, camid, x)
    return sums / counts.unsqueeze(1).to(x.dtype)


def camera_center(
    x: Any,
    camid: Any,
    means: Any | None = None,
    normalize: bool = True,
) -> torch.Tensor:
    r"""Subtracts each row's camera mean, then L2-normalises.

    .. math::
        \hat{x}_i = \frac{x_i - \bar{S}_{c_i}}{\lVert x_i - \bar{S}_{c_i} \rVert_2}

    Args:
        x (torch.Tensor): Features :math:`[N, d]`.
        camid (torch.Tensor): Camera of each row :math:`[N]`.
        means (torch.Tensor, optional): Camera means :math:`[C, d]` estimated on
            a reference set (e.g. the training split, from
            :func:`camera_means`); :obj:`None` estimates them on ``x`` itself.
            (default: :obj:`None`)
        normalize (bool, optional): Re-normalise to unit length.
            (default: :obj:`True`)

    Returns:
        torch.Tensor: Centred features :math:`[N, d]`. Time and memory
        :math:`O(Nd)`.

    Example:
        >>> x = torch.tensor([[1., 1.], [1., -1.], [3., 1.]])
        >>> camera_center(x, torch.tensor([0, 0, 1]), normalize=False)
        tensor([[ 0.,  1.],
                [ 0., -1.],
                [ 0.,  0.]])
    """
    x = check_matrix(x, "x")
    camid = check_vector(camid, "camid", length=x.size(0), length_of="rows of 'x'")
    camid = camid.to(device=x.device, dtype=torch.long)
    if means is None:
        means = camera_means(x, camid)
    else:
        means = check_matrix(means, "means").to(device=x.device, dtype=x.dtype)
        if means.size(1) != x.size(1):
            raise ValueError(
                f"'means' must have {x.size(1)} columns (the feature size of 'x'), "
                f"got {means.size(1)}"
            )
        if int(camid.max()) >= means.size(0) or int(camid.min()) < 0:
            raise ValueError(
                f"'camid' must lie in [0, {means.size(0) - 1}] (the rows of 'means'), "
                f"got range [{int(camid.min())}, {int(camid.max())}]"
            )
    out = x - means[camid]
    return l2_normalize(out) if normalize else out
