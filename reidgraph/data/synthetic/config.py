r"""Parameters of the synthetic camera-network world and its named presets.

A :class:`WorldConfig` holds every knob of the simulator as a typed,
validated field; :data:`PRESETS` names the standard worlds (``tiny`` for
unit tests, ``small`` for fast calibration checks, ``market-like`` shaped
after Market-1501, ``large`` for scale benchmarks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from reidgraph._validation import check_choice, check_int

__all__ = ["WorldConfig", "PRESETS", "MODALITIES", "resolve_config"]

#: Allowed values of :attr:`WorldConfig.modalities`.
MODALITIES: tuple[str, ...] = ("visible", "visible-infrared")


def _check_float(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"'{name}' must be a number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"'{name}' must be finite, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"'{name}' must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"'{name}' must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def _check_range(value: Any, name: str) -> tuple[float, float]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"'{name}' must be a pair (low, high) of seconds, got {value!r}")
    lo = _check_float(value[0], f"{name}[0]", low=0.0, low_open=True)
    hi = _check_float(value[1], f"{name}[1]", low=0.0, low_open=True)
    if lo > hi:
        raise ValueError(f"'{name}' must satisfy low <= high, got ({lo}, {hi})")
    return (lo, hi)


@dataclass(frozen=True)
class WorldConfig:
    r"""Every parameter of the synthetic camera-network world.

    The world is generated in four stages, each driven by its own child of
    ``numpy.random.SeedSequence(seed)``:

    1. **Network** — ``num_cameras`` cameras on a jittered grid in a square
       of side ``area`` metres, linked by walkways (the Gabriel graph of the
       positions, which contains the Euclidean minimum spanning tree and is
       therefore connected). Each walkway is ``1``–``1.3`` times longer than
       the straight line; the walking time between two cameras is the
       shortest walkway path divided by ``walk_speed``.
    2. **Walks** — identities enter uniformly in ``[0, duration]`` seconds,
       alone or with up to ``max_companions`` companions (probability
       ``companion_prob``; companions share route, speed and stops, which is
       the co-occurrence TLift exploits, QAConv-TLift Sec. 4). Each party
       follows a non-backtracking random walk of ``min_visits`` to
       ``max_visits`` cameras at an individual speed
       :math:`v = \texttt{walk\_speed}\cdot e^{\sigma z}`,
       :math:`\sigma=\texttt{speed\_sigma}`; before each transition it stops
       with probability ``stop_prob`` for a time drawn from ``stop_range``
       (the atypical transition times of G-Fusion Sec. 1, Fig. 1(b)). A visit
       lasts a time drawn from ``dwell_range`` and yields
       :math:`2 + \mathrm{Poisson}(\texttt{detections\_per\_visit} - 2)`
       detections (at most ``max_detections_per_visit``); two at least, so
       every Market-style query keeps a true match in another camera.
    3. **Appearance** — the IICS decomposition (Eq. 3)
       :math:`I_n^c = A_p + S_c + E_n`: identity codes :math:`A_p` are unit
       vectors in look-alike groups (mean size ``lookalike_group_size``,
       within-group cosine ``lookalike_similarity``); the camera term
       :math:`S_c` is an offset of norm ``camera_shift`` plus a
       camera-specific distortion of the code (weight ``camera_distortion``
       of a random rotation), so centring features per camera removes only
       part of it; :math:`E_n` is a per-visit term (norm ``visit_noise``,
       shared by a visit's detections: pose and light of one pass) plus a
       per-detection term (norm ``detection_noise``). Infrared cameras see
       a transformed code (colour dimensions damped by
       ``infrared_colour_keep``, mixed by a random rotation with weight
       ``infrared_mix``) and ``infrared_noise_scale`` times more noise.
    4. **Images** (optional) — ``image_size`` pedestrians whose colours and
       parts follow the identity code, with camera colour cast, pose/scale
       jitter and occlusion (probability ``occlusion_prob``); infrared
       cameras render grey images.

    Args:
        num_cameras (int): Cameras in the network, :math:`\geq 2`.
        num_train_ids (int): Training identities, :math:`\geq 1`.
        num_test_ids (int): Test identities (query + gallery), :math:`\geq 1`.
        num_distractor_ids (int): Extra walkers whose detections enter the
            gallery with ``pid = 0`` (Market-1501's distractor convention).
        duration (float): Seconds over which identities enter the network.
        area (float): Side of the square holding the cameras, metres.
        walk_speed (float): Nominal walking speed, metres per second.
        speed_sigma (float): Log-normal spread of individual speeds.
        min_visits (int): Fewest camera visits per identity, :math:`\geq 2`
            (every test identity can then be queried across cameras).
        max_visits (int): Most camera visits per identity.
        stop_prob (float): Probability of an atypical stop before each
            transition.
        stop_range (tuple[float, float]): Uniform range of a stop, seconds.
        dwell_range (tuple[float, float]): Uniform range of the time spent in
            one camera's view, seconds.
        detections_per_visit (float): Mean detections per visit (before the
            cap), :math:`\geq 2`.
        max_detections_per_visit (int): Cap on detections per visit,
            :math:`\geq 2`.
        companion_prob (float): Probability that a party has companions.
        max_companions (int): Most companions besides the first walker.
        fps (float): Frame rate; ``frame = round(time * fps)`` and ``time``
            is stored as ``frame / fps``.
        feature_dim (int): Feature dimension :math:`d`.
        lookalike_group_size (float): Mean identities per look-alike group.
        lookalike_similarity (float): Cosine between the codes of two
            identities of one look-alike group, in :math:`[0, 1)`.
        camera_shift (float): Norm of the camera offset in :math:`S_c`.
        camera_distortion (float): Weight :math:`\kappa \in [0, 1]` of the
            camera's random rotation of the identity code.
        visit_noise (float): Norm of the per-visit noise.
        detection_noise (float): Norm of the per-detection noise.
        modalities (str): ``"visible"`` or ``"visible-infrared"``.
        infrared_cameras (tuple[int, ...], optional): 0-based infrared cameras
            when ``modalities="visible-infrared"``; :obj:`None` picks every third
            camera from camera 2 (SYSU-MM01's cam3 and cam6 for six cameras).
        infrared_mix (float): Weight of the random rotation in the infrared
            code, in :math:`[0, 1]`.
        infrared_colour_keep (float): Factor on the colour half of the code
            in infrared, in :math:`[0, 1]`.
        infrared_noise_scale (float): Noise multiplier in infrared cameras.
        image_size (tuple[int, int]): Rendered ``(height, width)``.
        occlusion_prob (float): Probability that a rendered detection is
            partly occluded.

    Example:
        >>> cfg = WorldConfig(num_cameras=4, num_train_ids=10, num_test_ids=10)
        >>> cfg.num_cameras
        4
    """

    num_cameras: int = 6
    num_train_ids: int = 750
    num_test_ids: int = 750
    num_distractor_ids: int = 170
    duration: float = 7200.0
    area: float = 500.0
    walk_speed: float = 1.3
    speed_sigma: float = 0.1
    min_visits: int = 2
    max_visits: int = 5
    stop_prob: float = 0.1
    stop_range: tuple[float, float] = (120.0, 900.0)
    dwell_range: tuple[float, float] = (3.0, 12.0)
    detections_per_visit: float = 5.0
    max_detections_per_visit: int = 12
    companion_prob: float = 0.3
    max_companions: int = 2
    fps: float = 25.0
    feature_dim: int = 128
    lookalike_group_size: float = 4.0
    lookalike_similarity: float = 0.7
    camera_shift: float = 0.4
    camera_distortion: float = 0.33
    visit_noise: float = 0.7
    detection_noise: float = 0.4
    modalities: str = "visible"
    infrared_cameras: tuple[int, ...] | None = None
    infrared_mix: float = 0.6
    infrared_colour_keep: float = 0.35
    infrared_noise_scale: float = 1.5
    image_size: tuple[int, int] = (64, 32)
    occlusion_prob: float = 0.15

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        check_int(self.num_cameras, "num_cameras", min_value=2)
        check_int(self.num_train_ids, "num_train_ids", min_value=1)
        check_int(self.num_test_ids, "num_test_ids", min_value=1)
        check_int(self.num_distractor_ids, "num_distractor_ids", min_value=0)
        _check_float(self.duration, "duration", low=0.0, low_open=True)
        _check_float(self.area, "area", low=0.0, low_open=True)
        _check_float(self.walk_speed, "walk_speed", low=0.0, low_open=True)
        _check_float(self.speed_sigma, "speed_sigma", low=0.0, high=1.0)
        check_int(self.min_visits, "min_visits", min_value=2)
        if check_int(self.max_visits, "max_visits", min_value=2) < self.min_visits:
            raise ValueError(
                f"'max_visits' must be >= 'min_visits' ({self.min_visits}), got {self.max_visits}"
            )
        _check_float(self.stop_prob, "stop_prob", low=0.0, high=1.0)
        set_(self, "stop_range", _check_range(self.stop_range, "stop_range"))
        set_(self, "dwell_range", _check_range(self.dwell_range, "dwell_range"))
        check_int(self.max_detections_per_visit, "max_detections_per_visit", min_value=2)
        _check_float(
            self.detections_per_visit,
            "detections_per_visit",
            low=2.0,
            high=float(self.max_detections_per_visit),
        )
        _check_float(self.companion_prob, "companion_prob", low=0.0, high=1.0)
        check_int(self.max_companions, "max_companions", min_value=0)
        _check_float(self.fps, "fps", low=0.0, low_open=True)
        check_int(self.feature_dim, "feature_dim", min_value=2)
        _check_float(self.lookalike_group_size, "lookalike_group_size", low=1.0)
        _check_float(
            self.lookalike_similarity, "lookalike_similarity", low=0.0, high=1.0, high_open=True
        )
        for name in ("camera_shift", "visit_noise", "detection_noise"):
            _check_float(getattr(self, name), name, low=0.0)
        _check_float(self.camera_distortion, "camera_distortion", low=0.0, high=1.0)
        set_(self, "modalities", check_choice(self.modalities, "modalities", MODALITIES))
        set_(self, "infrared_cameras", self._check_infrared())
        _check_float(self.infrared_mix, "infrared_mix", low=0.0, high=1.0)
        _check_float(self.infrared_colour_keep, "infrared_colour_keep", low=0.0, high=1.0)
        _check_float(self.infrared_noise_scale, "infrared_noise_scale", low=0.0, low_open=True)
        size = self.image_size
        if not isinstance(size, tuple | list) or len(size) != 2:
            raise ValueError(f"'image_size' must be a pair (height, width), got {size!r}")
        height = check_int(size[0], "image_size[0] (height)", min_value=16)
        width = check_int(size[1], "image_size[1] (width)", min_value=8)
        set_(self, "image_size", (height, width))
        _check_float(self.occlusion_prob, "occlusion_prob", low=0.0, high=1.0)

    def _check_infrared(self) -> tuple[int, ...] | None:
        cams = self.infrared_cameras
        if cams is None:
            return None
        if self.modalities == "visible":
            raise ValueError(
                f"'infrared_cameras' was given ({cams!r}) but modalities='visible'; "
                "pass modalities='visible-infrared'"
            )
        if not isinstance(cams, tuple | list) or len(cams) == 0:
            raise ValueError(f"'infrared_cameras' must be a non-empty tuple of ints, got {cams!r}")
        out = tuple(
            check_int(
                c,
                "infrared_cameras[i]",
                min_value=0,
                max_value=self.num_cameras - 1,
                max_reason="num_cameras - 1",
            )
            for c in cams
        )
        if len(set(out)) != len(out):
            raise ValueError(f"'infrared_cameras' must not repeat a camera, got {out}")
        if len(out) == self.num_cameras:
            raise ValueError(
                f"'infrared_cameras' must leave at least one visible camera, got all {out}"
            )
        return tuple(sorted(out))

    @property
    def infrared_camera_ids(self) -> tuple[int, ...]:
        r"""The infrared cameras actually used (empty for ``"visible"``)."""
        if self.modalities == "visible":
            return ()
        if self.infrared_cameras is not None:
            return self.infrared_cameras
        cams = tuple(range(2, self.num_cameras, 3))
        return cams if cams else (self.num_cameras - 1,)

    @property
    def num_ids(self) -> int:
        r"""All walkers: train, test and distractor identities."""
        return self.num_train_ids + self.num_test_ids + self.num_distractor_ids


#: Named worlds. ``tiny`` generates in well under a second (unit tests);
#: ``small`` is a mid-size world for fast calibration checks; ``market-like``
#: follows Market-1501's shape (~750 train / 750 test identities, 6 cameras,
#: ~13k train detections); ``large`` has > 100k detections (scale benchmarks,
#: MSMT17-like 15 cameras).
PRESETS: dict[str, WorldConfig] = {
    "tiny": WorldConfig(
        num_cameras=4,
        num_train_ids=16,
        num_test_ids=16,
        num_distractor_ids=4,
        duration=600.0,
        area=300.0,
        detections_per_visit=3.0,
        max_detections_per_visit=6,
        max_visits=4,
    ),
    "small": WorldConfig(
        num_train_ids=150,
        num_test_ids=150,
        num_distractor_ids=34,
        duration=1800.0,
    ),
    "market-like": WorldConfig(),
    "large": WorldConfig(
        num_cameras=15,
        num_train_ids=4000,
        num_test_ids=3000,
        num_distractor_ids=1000,
        duration=4 * 3600.0,
        area=1200.0,
        max_visits=6,
    ),
}


def resolve_config(preset: str | WorldConfig, **overrides: Any) -> WorldConfig:
    r"""Returns the preset (by name, or a given :class:`WorldConfig`) with
    ``overrides`` applied field by field.

    Raises:
        ValueError: If ``preset`` names no preset (the message lists them) or
            an override gives a nonsense value.
        TypeError: If an override names no :class:`WorldConfig` field.

    Example:
        >>> resolve_config("tiny", feature_dim=16).feature_dim
        16
    """
    if isinstance(preset, WorldConfig):
        base = preset
    elif isinstance(preset, str):
        base = PRESETS[check_choice(preset, "preset", tuple(PRESETS))]
    else:
        raise TypeError(
            f"'preset' must be a preset name {sorted(PRESETS)} or a WorldConfig, "
            f"got {type(preset).__name__}"
        )
    names = {f.name for f in fields(WorldConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(
            f"Unknown world parameter(s) {unknown}; valid WorldConfig fields are {sorted(names)}"
        )
    return replace(base, **overrides) if overrides else base
