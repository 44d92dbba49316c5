r"""Walks through the camera network: parties, routes, visits, detections.

Everything is vectorised over parties, visits and detections; the only
Python loop runs over the route step (at most ``max_visits`` iterations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reidgraph.data.synthetic.config import WorldConfig
from reidgraph.data.synthetic.network import CameraNetwork

__all__ = ["Walks", "simulate_walks"]


@dataclass(frozen=True, eq=False)
class Walks:
    r"""The simulated walks, one row per visit and one per detection.

    Identities are the global walker indices ``0 .. num_ids - 1`` (train,
    test and distractors alike; the world maps them to ``pid``).

    Per identity (``[num_ids]``): ``party`` (companions share a party),
    ``speed`` (speed factor :math:`v / \texttt{walk\_speed}`).

    Per visit (``[V]``): ``visit_identity``, ``visit_camid``,
    ``visit_order`` (0 for the first camera of a route), ``visit_enter`` /
    ``visit_exit`` (seconds, before frame quantisation), ``visit_stop``
    (seconds stopped just before this visit, 0 if none) and
    ``visit_atypical`` (``visit_stop > 0``).

    Per detection (``[N]``): ``identity``, ``camid``, ``visit``, ``frame``,
    ``time`` (``frame / fps``) and ``atypical`` (its visit followed a stop).
    """

    party: np.ndarray
    speed: np.ndarray
    visit_identity: np.ndarray
    visit_camid: np.ndarray
    visit_order: np.ndarray
    visit_enter: np.ndarray
    visit_exit: np.ndarray
    visit_stop: np.ndarray
    identity: np.ndarray
    camid: np.ndarray
    visit: np.ndarray
    frame: np.ndarray
    time: np.ndarray

    @property
    def visit_atypical(self) -> np.ndarray:
        return self.visit_stop > 0

    @property
    def atypical(self) -> np.ndarray:
        return self.visit_atypical[self.visit]

    @property
    def num_detections(self) -> int:
        return int(self.identity.size)


def _random_routes(
    network: CameraNetwork, num: int, length: int, rng: np.random.Generator
) -> np.ndarray:
    # Non-backtracking random walk along walkways: the next camera is uniform
    # among the current camera's neighbours other than the previous one
    # (back-tracking only out of a dead end).
    nbr = network.neighbours()
    route = np.empty((num, length), dtype=np.int64)
    route[:, 0] = rng.integers(network.num_cameras, size=num)
    prev = np.full(num, -1, dtype=np.int64)
    rows = np.arange(num)
    for k in range(1, length):
        cand = nbr[route[:, k - 1]]
        ok = (cand >= 0) & (cand != prev[:, None])
        dead = ~ok.any(1)
        ok[dead] = cand[dead] >= 0
        pick = np.floor(rng.random(num) * ok.sum(1)).astype(np.int64)
        chosen = ok & (np.cumsum(ok, 1) - 1 == pick[:, None])
        prev = route[:, k - 1]
        route[:, k] = cand[rows, chosen.argmax(1)]
    return route


def simulate_walks(config: WorldConfig, network: CameraNetwork, rng: np.random.Generator) -> Walks:
    r"""Simulates every walker of the world.

    A party (one walker, or one with companions) enters at
    :math:`t_0 \sim U(0, \texttt{duration})`, walks a route
    :math:`c_0, \dots, c_{L-1}` with :math:`L \sim U\{\texttt{min\_visits},
    \dots, \texttt{max\_visits}\}` at speed factor :math:`s = e^{\sigma z}`, and
    enters visit :math:`k \geq 1` at

    .. math::
        t^{in}_k = t^{in}_{k-1} + w_{k-1} + \frac{W[c_{k-1}, c_k]}{s}
                   + b_k\,u_k,\qquad b_k \sim \mathrm{Bernoulli}(p_{stop}),\;
                   u_k \sim U(\texttt{stop\_range}),

    with dwell :math:`w_k \sim U(\texttt{dwell\_range})` and walking time
    :math:`W` (:attr:`CameraNetwork.walk_time`). A stop :math:`b_k = 1` makes
    the transition atypical (G-Fusion Sec. 1, Fig. 1(b)). Companions keep a
    fixed offset :math:`U(0, 2)` s behind the party plus :math:`U(0, 1)` s per
    visit. A visit yields :math:`2 + \mathrm{Poisson}(\bar n - 2)` detections
    (capped) at uniform times within its dwell; ``frame = round(t * fps)``.

    Args:
        config (WorldConfig): The world parameters.
        network (CameraNetwork): Where to walk.
        rng (numpy.random.Generator): Source of randomness.

    Returns:
        Walks: The visits and detections (cost :math:`O(N)` time and memory
        for :math:`N` detections).

    Example:
        >>> from reidgraph.data.synthetic.config import PRESETS
        >>> from reidgraph.data.synthetic.network import make_network
        >>> cfg = PRESETS["tiny"]; g = np.random.default_rng(0)
        >>> net = make_network(cfg.num_cameras, cfg.area, cfg.walk_speed, (), g)
        >>> walks = simulate_walks(cfg, net, g)
        >>> bool((walks.camid < cfg.num_cameras).all())
        True
    """
    n = config.num_ids
    # Parties: sizes until they cover all identities.
    grouped = rng.random(n) < config.companion_prob
    extra = rng.integers(1, config.max_companions + 1, size=n) if config.max_companions else 0
    size = 1 + np.where(grouped, extra, 0)
    ends = np.cumsum(size)
    party = np.searchsorted(ends, np.arange(n), side="right")
    num_parties = int(party[-1]) + 1
    is_companion = np.zeros(n, dtype=bool)
    is_companion[1:] = party[1:] == party[:-1]

    # Party routes and timing.
    t0 = rng.uniform(0.0, config.duration, size=num_parties)
    length = rng.integers(config.min_visits, config.max_visits + 1, size=num_parties)
    speed = np.exp(config.speed_sigma * rng.standard_normal(num_parties))
    route = _random_routes(network, num_parties, config.max_visits, rng)
    dwell = rng.uniform(*config.dwell_range, size=(num_parties, config.max_visits))
    stops = np.where(
        rng.random((num_parties, config.max_visits)) < config.stop_prob,
        rng.uniform(*config.stop_range, size=(num_parties, config.max_visits)),
        0.0,
    )
    stops[:, 0] = 0.0  # nothing to stop before the first camera
    transit = network.walk_time[route[:, :-1], route[:, 1:]] / speed[:, None]
    step = np.zeros((num_parties, config.max_visits))
    step[:, 1:] = dwell[:, :-1] + transit + stops[:, 1:]
    enter = t0[:, None] + np.cumsum(step, axis=1)

    # Member visits: companions trail the party by a fixed offset.
    offset = np.where(is_companion, rng.uniform(0.0, 2.0, size=n), 0.0)
    visits_per_id = length[party]
    num_visits = int(visits_per_id.sum())
    v_id = np.repeat(np.arange(n), visits_per_id)
    v_order = np.arange(num_visits) - np.repeat(
        np.cumsum(visits_per_id) - visits_per_id, visits_per_id
    )
    v_party = party[v_id]
    jitter = np.where(is_companion[v_id], rng.uniform(0.0, 1.0, size=num_visits), 0.0)
    v_enter = enter[v_party, v_order] + offset[v_id] + jitter
    v_dwell = dwell[v_party, v_order]

    # Detections within each visit.
    count = 2 + rng.poisson(config.detections_per_visit - 2.0, size=num_visits)
    count = np.minimum(count, config.max_detections_per_visit)
    d_visit = np.repeat(np.arange(num_visits), count)
    t = v_enter[d_visit] + rng.random(d_visit.size) * v_dwell[d_visit]
    frame = np.rint(t * config.fps).astype(np.int64)
    return Walks(
        party=party,
        speed=speed[party],
        visit_identity=v_id,
        visit_camid=route[v_party, v_order],
        visit_order=v_order,
        visit_enter=v_enter,
        visit_exit=v_enter + v_dwell,
        visit_stop=stops[v_party, v_order],
        identity=v_id[d_visit],
        camid=route[v_party, v_order][d_visit],
        visit=d_visit,
        frame=frame,
        time=frame / config.fps,
    )
