r"""The camera network: positions, walkways and walking times.

Ground truth for the spatio-temporal methods: G-Fusion's transition sets
:math:`T(a, b)` (Eq. 3) should concentrate near :attr:`CameraNetwork.walk_time`
``[a, b]`` for cameras that people walk between directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import shortest_path

__all__ = ["CameraNetwork", "make_network"]


@dataclass(frozen=True, eq=False)
class CameraNetwork:
    r"""Cameras, the walkways linking them and the walking times.

    Args:
        positions (numpy.ndarray): Camera positions in metres ``[C, 2]``.
        adjacency (numpy.ndarray): Walkway links ``[C, C]`` bool, symmetric,
            no self-loops; routes step only along links.
        walk_time (numpy.ndarray): Shortest walking time in seconds at the
            nominal speed ``[C, C]`` (0 on the diagonal), for every pair.
        infrared (numpy.ndarray): Whether each camera is infrared ``[C]`` bool.
    """

    positions: np.ndarray
    adjacency: np.ndarray
    walk_time: np.ndarray
    infrared: np.ndarray

    @property
    def num_cameras(self) -> int:
        return int(self.positions.shape[0])

    @property
    def modality(self) -> np.ndarray:
        r"""Per-camera modality ``[C]`` int64 (0 visible, 1 infrared)."""
        return self.infrared.astype(np.int64)

    def neighbours(self) -> np.ndarray:
        r"""Padded neighbour lists ``[C, max_degree]`` int64, ``-1`` padding."""
        deg = self.adjacency.sum(1)
        out = np.full((self.num_cameras, int(deg.max())), -1, dtype=np.int64)
        rows, cols = np.nonzero(self.adjacency)
        # np.nonzero is row-major, so each row's neighbours are contiguous.
        slot = np.arange(rows.size) - np.repeat(np.cumsum(deg) - deg, deg)
        out[rows, slot] = cols
        return out


def _gabriel_graph(pos: np.ndarray) -> np.ndarray:
    # (a, b) is a Gabriel edge when no third point lies inside the circle of
    # diameter ab: d(a,c)^2 + d(b,c)^2 >= d(a,b)^2 for every c. It contains
    # the Euclidean minimum spanning tree, so the graph is connected.
    # c = a or c = b gives equality, never "<", so no self-exclusion is needed.
    d2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    blocked = d2[:, None, :] + d2[None, :, :] < d2[:, :, None] - 1e-9
    adj = ~blocked.any(-1)
    np.fill_diagonal(adj, False)
    return adj


def make_network(
    num_cameras: int,
    area: float,
    walk_speed: float,
    infrared_cameras: tuple[int, ...],
    rng: np.random.Generator,
) -> CameraNetwork:
    r"""Places ``num_cameras`` cameras and links them with walkways.

    Cameras sit on the cells of a jittered :math:`\lceil\sqrt{C}\rceil^2` grid
    over a square of side ``area`` (so two cameras are at least 0.4 cell
    apart), walkways form the Gabriel graph of the positions, each walkway is
    ``U(1, 1.3)`` times its straight length (paths are not straight), and
    :math:`\mathrm{walk\_time}[a, b]` is the shortest walkway path over
    ``walk_speed``.

    Args:
        num_cameras (int): :math:`C \geq 2`.
        area (float): Side of the square, metres.
        walk_speed (float): Metres per second.
        infrared_cameras (tuple[int, ...]): Cameras that are infrared.
        rng (numpy.random.Generator): Source of randomness.

    Returns:
        CameraNetwork: The network (cost :math:`O(C^3)`).

    Example:
        >>> net = make_network(4, 300.0, 1.3, (), np.random.default_rng(0))
        >>> net.walk_time.shape
        (4, 4)
    """
    side = math.ceil(math.sqrt(num_cameras))
    cell = area / side
    cells = rng.permutation(side * side)[:num_cameras]
    centre = np.stack([cells % side, cells // side], axis=1) + 0.5
    pos = (centre + rng.uniform(-0.3, 0.3, size=(num_cameras, 2))) * cell
    adj = _gabriel_graph(pos)
    detour = rng.uniform(1.0, 1.3, size=(num_cameras, num_cameras))
    detour = np.triu(detour, 1) + np.triu(detour, 1).T
    length = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1)) * detour
    # Zero entries are "no edge" for csgraph, so non-links get 0 here.
    walk = shortest_path(np.where(adj, length, 0.0), method="D", directed=False) / walk_speed
    infrared = np.zeros(num_cameras, dtype=bool)
    infrared[list(infrared_cameras)] = True
    return CameraNetwork(positions=pos, adjacency=adj, walk_time=walk, infrared=infrared)
