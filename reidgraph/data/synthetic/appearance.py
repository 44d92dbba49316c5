r"""Detection features following IICS's appearance model (Eq. 3).

IICS writes an image of person :math:`p` in camera :math:`c` as
:math:`I_n^c \doteq A_p + S_c + E_n`. Here the camera term :math:`S_c` has
two parts, an offset :math:`s_c` (what per-camera feature centring or
AIBN-style normalisation removes) and a camera-specific distortion
:math:`M_c` of the identity code (what it does not), so

.. math::
    x_n = \frac{\tilde x_n}{\lVert \tilde x_n \rVert_2},\qquad
    \tilde x_n = \overline{M_c\, T_{m(c)} A_p} + s_c
                 + g_{m(c)}\,(E_{v(n)} + E_n),

with :math:`\overline{\,\cdot\,}` rescaling to unit norm, :math:`A_p` the
identity code (in look-alike groups), :math:`T_1` the infrared transform
(:math:`T_0 = I`), :math:`E_{v(n)}` the noise of the visit (shared by the
detections of one pass in front of a camera), :math:`E_n` the detection's
own noise and :math:`g_1 = \texttt{infrared\_noise\_scale}`, :math:`g_0 = 1`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reidgraph.data.synthetic.config import WorldConfig
from reidgraph.data.synthetic.network import CameraNetwork
from reidgraph.data.synthetic.trajectories import Walks

__all__ = ["Appearance", "make_appearance", "detection_features"]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(min=1e-12)


def _rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))  # Haar-uniform orthogonal matrix


@dataclass(frozen=True, eq=False)
class Appearance:
    r"""Identity codes and camera terms of one world.

    Args:
        codes (numpy.ndarray): Visible identity codes :math:`A_p`
            ``[num_ids, d]`` float32, unit rows.
        camera_codes (numpy.ndarray): What camera :math:`c` sees of identity
            :math:`p`, :math:`\overline{M_c T_{m(c)} A_p}` ``[C, num_ids, d]``
            float32, unit rows.
        lookalike (numpy.ndarray): Look-alike group of each identity
            ``[num_ids]`` int64.
        camera_shift (numpy.ndarray): Offsets :math:`s_c` ``[C, d]`` float32.
    """

    codes: np.ndarray
    camera_codes: np.ndarray
    lookalike: np.ndarray
    camera_shift: np.ndarray


def make_appearance(
    config: WorldConfig, network: CameraNetwork, rng: np.random.Generator
) -> Appearance:
    r"""Draws identity codes, look-alike groups and the camera terms.

    Identity :math:`p` in look-alike group :math:`g(p)` gets

    .. math::
        A_p = \overline{\sqrt{\rho}\, G_{g(p)} + \sqrt{1 - \rho}\, U_p}

    with :math:`G, U` uniform unit vectors and :math:`\rho` =
    ``lookalike_similarity``, so two members of a group have cosine
    :math:`\approx \rho` (hard negatives) and two strangers :math:`\approx 0`.
    ``round(num_ids / lookalike_group_size)`` groups are assigned uniformly.
    Camera terms: :math:`s_c` is a uniform direction of norm
    ``camera_shift`` and :math:`M_c = (1 - \kappa) I + \kappa R_c` with a
    random rotation :math:`R_c` and :math:`\kappa` = ``camera_distortion``
    (the same identity in two cameras then has code cosine about
    :math:`(1-\kappa)^2 / ((1-\kappa)^2 + \kappa^2)`). The infrared transform is

    .. math::
        T_1 A_p = (1 - \tau)\, D A_p + \tau\, R\, D A_p,

    with :math:`D` damping the first :math:`\lfloor d/2 \rfloor` ("colour")
    dimensions by ``infrared_colour_keep``, :math:`R` a random rotation and
    :math:`\tau` = ``infrared_mix``.

    Args:
        config (WorldConfig): The world parameters.
        network (CameraNetwork): Cameras and which are infrared.
        rng (numpy.random.Generator): Source of randomness.

    Returns:
        Appearance: Codes and camera terms (cost :math:`O(C (n d^2 + d^3))`
        time, :math:`O(C n d)` memory for :math:`n` identities).
    """
    n, d, num_cams = config.num_ids, config.feature_dim, network.num_cameras
    num_groups = max(1, round(n / config.lookalike_group_size))
    lookalike = rng.integers(num_groups, size=n)
    centres = _unit_rows(rng.standard_normal((num_groups, d)))
    own = _unit_rows(rng.standard_normal((n, d)))
    rho = config.lookalike_similarity
    codes = _unit_rows(np.sqrt(rho) * centres[lookalike] + np.sqrt(1.0 - rho) * own)
    shift = config.camera_shift * _unit_rows(rng.standard_normal((num_cams, d)))

    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    damp = np.ones(d)
    damp[: d // 2] = config.infrared_colour_keep
    tau, kappa = config.infrared_mix, config.camera_distortion
    camera_codes = np.empty((num_cams, n, d), dtype=np.float32)
    # One BLAS thread: on a busy 2-core machine multi-threaded LAPACK QR of a
    # 128 x 128 matrix was measured at ~1.8 s instead of ~1 ms (spin-waits).
    with threadpool_limits(limits=1, user_api="blas"):
        ir_rot = _rotation(d, rng)
        infrared = (1.0 - tau) * (codes * damp) + tau * (codes * damp) @ ir_rot.T
        for c in range(num_cams):  # C <= a few dozen; each step is vectorised
            base = infrared if network.infrared[c] else codes
            rot = _rotation(d, rng)
            camera_codes[c] = _unit_rows((1.0 - kappa) * base + kappa * base @ rot.T)
    return Appearance(
        codes=codes.astype(np.float32),
        camera_codes=camera_codes,
        lookalike=lookalike.astype(np.int64),
        camera_shift=shift.astype(np.float32),
    )


def detection_features(
    config: WorldConfig,
    appearance: Appearance,
    network: CameraNetwork,
    walks: Walks,
    rng: np.random.Generator,
) -> np.ndarray:
    r"""The L2-normalised feature of every detection (module equation).

    Noise vectors are :math:`\sigma\, z / \sqrt{d}` with
    :math:`z \sim \mathcal N(0, I_d)` (expected norm :math:`\approx \sigma`):
    :math:`\sigma` = ``visit_noise`` per visit, ``detection_noise`` per
    detection, both times ``infrared_noise_scale`` in infrared cameras.

    Args:
        config (WorldConfig): The world parameters.
        appearance (Appearance): Codes and camera terms.
        network (CameraNetwork): Which cameras are infrared.
        walks (Walks): The detections.
        rng (numpy.random.Generator): Source of randomness.

    Returns:
        numpy.ndarray: ``[N, d]`` float32, unit rows (cost :math:`O(N d)`).
    """
    d = config.feature_dim
    scale = np.float32(1.0 / np.sqrt(d))
    det_ir = network.infrared[walks.camid]
    visit_noise = rng.standard_normal((walks.visit_camid.size, d), dtype=np.float32)
    visit_noise *= np.float32(config.visit_noise) * scale
    x = rng.standard_normal((walks.num_detections, d), dtype=np.float32)
    x *= np.float32(config.detection_noise) * scale
    x += visit_noise[walks.visit]
    if det_ir.any():
        x[det_ir] *= np.float32(config.infrared_noise_scale)
    x += appearance.camera_codes[walks.camid, walks.identity]
    x += appearance.camera_shift[walks.camid]
    x /= np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
    return x
