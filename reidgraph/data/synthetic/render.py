r"""Small pedestrian images drawn with numpy, consistent with the features.

Each identity's look (clothes colours, hair, skin, stripes, bag, sleeves,
infrared reflectance) is a fixed random projection of its code :math:`A_p`,
so look-alike identities (similar codes) look alike in the images too. Each
camera adds a colour cast and its own background, each visit a pose (scale,
position, stride, bag side, light) and each detection a small jitter, an
optional occluder and pixel noise. Infrared cameras draw grey images
(three equal channels) from the infrared reflectances.

All random parameters are drawn once for all detections of the world (in
global detection order), so rendering any subset gives the same pixels as
rendering everything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RenderParams", "make_render_params", "render_images", "write_images"]

_NOISE_BANK = 32
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _hsv_colour(raw: np.ndarray, value_low: float = 0.25, value_high: float = 0.95) -> np.ndarray:
    # raw [n, 4] ~ N(0, 1): hue from the angle of (raw0, raw1), so close codes
    # give close hues; saturation and value from raw2, raw3.
    h = (np.arctan2(raw[:, 1], raw[:, 0]) / (2 * np.pi)) % 1.0
    s = 0.2 + 0.75 * _sigmoid(1.5 * raw[:, 2])
    v = value_low + (value_high - value_low) * _sigmoid(1.5 * raw[:, 3])
    k = (np.array([5.0, 3.0, 1.0])[None, :] + 6.0 * h[:, None]) % 6.0
    return v[:, None] - v[:, None] * s[:, None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class RenderParams:
    r"""Everything random about the images of one world.

    Per identity: ``colours`` ``[num_ids, 7, 3]`` (hair, skin, upper, lower,
    shoes, stripes, bag), ``infrared`` ``[num_ids, 7]`` grey levels of the
    same parts, ``flags`` ``[num_ids, 3]`` bool (stripes, bag, short
    sleeves). Per camera: ``gain``/``bias`` ``[C, 3]`` colour cast,
    ``background`` ``[C, 2, 3]`` (top, bottom), ``occluder`` ``[C, 3]``,
    ``infrared_camera`` ``[C]`` bool. Per detection (global order):
    ``scale``, ``shift``, ``stride``, ``bag_side``, ``light``,
    ``occlusion`` (0 none, 1 bottom, 2 left, 3 right), ``occlusion_frac``,
    ``noise`` (index into ``noise_bank`` ``[K, H, W, 3]``).
    """

    size: tuple[int, int]
    colours: np.ndarray
    infrared: np.ndarray
    flags: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    background: np.ndarray
    occluder: np.ndarray
    infrared_camera: np.ndarray
    scale: np.ndarray
    shift: np.ndarray
    stride: np.ndarray
    bag_side: np.ndarray
    light: np.ndarray
    occlusion: np.ndarray
    occlusion_frac: np.ndarray
    noise: np.ndarray
    noise_bank: np.ndarray
    noise_level: float
    infrared_noise_level: float


def make_render_params(
    codes: np.ndarray,
    infrared_camera: np.ndarray,
    visit: np.ndarray,
    num_visits: int,
    size: tuple[int, int],
    occlusion_prob: float,
    infrared_noise_scale: float,
    rng: np.random.Generator,
) -> RenderParams:
    r"""Draws the look of every identity and the pose of every detection.

    An identity's attributes are :math:`r = P A_p` for a fixed
    Gaussian projection :math:`P` (``[29, d]``), so each attribute is
    :math:`\mathcal N(0, 1)` over identities and two identities with code
    cosine :math:`\rho` have attributes with correlation :math:`\rho`.
    Colours are HSV from four attributes each; flags threshold one.

    Args:
        codes (numpy.ndarray): Identity codes ``[num_ids, d]``, unit rows.
        infrared_camera (numpy.ndarray): ``[C]`` bool.
        visit (numpy.ndarray): Visit of each detection ``[N]``.
        num_visits (int): Number of visits.
        size (tuple[int, int]): ``(height, width)``.
        occlusion_prob (float): Probability of an occluder per detection.
        infrared_noise_scale (float): Pixel-noise multiplier in infrared.
        rng (numpy.random.Generator): Source of randomness.

    Returns:
        RenderParams: The parameters (cost :math:`O(n d + N)`).
    """
    n_ids, d = codes.shape
    num_cams = infrared_camera.shape[0]
    proj = rng.standard_normal((29, d))
    # Unit codes times N(0, 1) rows: each attribute is N(0, 1) over identities.
    raw = codes.astype(np.float64) @ proj.T
    upper = _hsv_colour(raw[:, 0:4])
    lower = _hsv_colour(raw[:, 4:8], 0.15, 0.85)
    stripe = _hsv_colour(raw[:, 8:12])
    bag = _hsv_colour(raw[:, 12:16], 0.1, 0.8)
    shoes = np.repeat(0.08 + 0.3 * _sigmoid(raw[:, 16:17]), 3, axis=1)
    dark, light_skin = np.array([0.42, 0.28, 0.2]), np.array([0.96, 0.8, 0.68])
    tone = _sigmoid(1.5 * raw[:, 17:18])
    skin = dark + tone * (light_skin - dark)
    hair = np.array([0.05, 0.04, 0.03]) + _sigmoid(1.5 * raw[:, 18:19]) * np.array([0.5, 0.35, 0.2])
    colours = np.stack([hair, skin, upper, lower, shoes, stripe, bag], axis=1)
    flags = np.stack([raw[:, 19] > 0.9, raw[:, 20] > 0.6, raw[:, 21] > 0.0], axis=1)
    # Infrared grey level: partly the visible luminance, partly an
    # independent reflectance (cloth dyes differ in the near infrared).
    luma = colours @ _LUMA.astype(np.float64)
    infrared = 0.35 * luma + 0.65 * _sigmoid(1.5 * raw[:, 22:29])

    gain = rng.uniform(0.8, 1.2, size=(num_cams, 3))
    bias = rng.uniform(-0.06, 0.06, size=(num_cams, 3))
    background = 0.2 + 0.5 * rng.random((num_cams, 2, 3))
    occluder = 0.1 + 0.6 * rng.random((num_cams, 3))

    n = visit.shape[0]
    v_scale = rng.uniform(0.84, 1.0, size=num_visits)
    v_shift = rng.uniform(-0.07, 0.07, size=num_visits)
    v_stride = rng.uniform(-1.0, 1.0, size=num_visits)
    v_side = np.where(rng.random(num_visits) < 0.5, -1.0, 1.0)
    v_light = rng.uniform(0.85, 1.15, size=num_visits)
    scale = v_scale[visit] * rng.uniform(0.97, 1.03, size=n)
    shift = v_shift[visit] + rng.uniform(-0.02, 0.02, size=n)
    stride = np.clip(v_stride[visit] + rng.uniform(-0.3, 0.3, size=n), -1.0, 1.0)
    light = v_light[visit] * rng.uniform(0.95, 1.05, size=n)
    occluded = rng.random(n) < occlusion_prob
    occlusion = np.where(occluded, 1 + rng.integers(3, size=n), 0)
    occlusion_frac = rng.uniform(0.2, 0.45, size=n)
    noise = rng.integers(_NOISE_BANK, size=n)
    bank = rng.standard_normal((_NOISE_BANK, size[0], size[1], 3), dtype=np.float32)
    f32 = np.float32
    return RenderParams(
        size=size,
        colours=colours.astype(f32),
        infrared=infrared.astype(f32),
        flags=flags,
        gain=gain.astype(f32),
        bias=bias.astype(f32),
        background=background.astype(f32),
        occluder=occluder.astype(f32),
        infrared_camera=infrared_camera.astype(bool),
        scale=scale.astype(f32),
        shift=shift.astype(f32),
        stride=stride.astype(f32),
        bag_side=v_side[visit].astype(f32),
        light=light.astype(f32),
        occlusion=occlusion.astype(np.int64),
        occlusion_frac=occlusion_frac.astype(f32),
        noise=noise.astype(np.int64),
        noise_bank=bank,
        noise_level=0.025,
        infrared_noise_level=0.025 * 1.5 * infrared_noise_scale,
    )


# Part labels of the label map; 0 is the background gradient.
_HAIR, _SKIN, _UPPER, _LOWER, _SHOES, _STRIPE, _BAG, _OCCLUDER = range(1, 9)


def _render_chunk(
    p: RenderParams, det: np.ndarray, identity: np.ndarray, camid: np.ndarray
) -> np.ndarray:
    H, W = p.size
    n = det.size
    ir = p.infrared_camera[camid]
    flags = p.flags[identity]

    # Palette [n, 9, 3]: index = part label; infrared images use grey levels.
    palette = np.zeros((n, 9, 3), dtype=np.float32)
    palette[:, 1:8] = np.where(
        ir[:, None, None], p.infrared[identity][:, :, None], p.colours[identity]
    )
    occ = p.occluder[camid]
    bg = p.background[camid]
    if ir.any():
        occ = np.where(ir[:, None], (occ @ _LUMA)[:, None], occ)
        bg = np.where(ir[:, None, None], (bg @ _LUMA)[:, :, None], bg)
    palette[:, _OCCLUDER] = occ

    # Painter's algorithm on a uint8 label map; masks broadcast [n,H,1] x [n,1,W].
    yy = (np.arange(H, dtype=np.float32) + 0.5)[None, :, None]
    xx = (np.arange(W, dtype=np.float32) + 0.5)[None, None, :]
    height = (p.scale[det] * 0.92 * H)[:, None, None]
    u = (yy - (0.975 * H - height)) / height  # [n, H, 1] in person heights from the top
    sx = (xx - ((0.5 + p.shift[det]) * W)[:, None, None]) / height  # [n, 1, W]
    ax = np.abs(sx)
    label = np.zeros((n, H, W), dtype=np.uint8)

    def paint(mask: np.ndarray, part: int) -> None:
        np.copyto(label, np.uint8(part), where=mask)

    spread = (p.stride[det] * 0.05)[:, None, None] * np.clip((u - 0.52) / 0.42, 0, 1)
    dl, dr = np.abs(sx + 0.055 + spread), np.abs(sx - 0.055 - spread)
    paint((u >= 0.52) & (u < 0.94) & ((dl < 0.05) | (dr < 0.05)), _LOWER)
    paint((u >= 0.94) & (u < 1.0) & ((dl < 0.06) | (dr < 0.06)), _SHOES)
    torso = (u >= 0.16) & (u < 0.53) & (ax < 0.13 - 0.02 * (u - 0.16) / 0.37)
    paint(torso, _UPPER)
    band = (np.floor((u - 0.16) / 0.045) % 2 == 1) & flags[:, 0, None, None]
    paint(torso & band, _STRIPE)
    arms = (u >= 0.17) & (u < 0.5) & (ax >= 0.13) & (ax < 0.185)
    sleeve = ~flags[:, 2, None, None] | (u < 0.29)
    paint(arms & sleeve, _UPPER)
    paint(arms & ~sleeve, _SKIN)
    head = (sx / 0.07) ** 2 + ((u - 0.085) / 0.075) ** 2 < 1.0
    paint(head, _SKIN)
    paint(head & (u < 0.065), _HAIR)
    side_x = p.bag_side[det][:, None, None] * sx
    bag = (u >= 0.33) & (u < 0.55) & (side_x >= 0.15) & (side_x < 0.26)
    paint(bag & flags[:, 1, None, None], _BAG)
    kind = p.occlusion[det][:, None, None]
    frac = p.occlusion_frac[det][:, None, None]
    paint(
        ((kind == 1) & (yy > H * (1 - frac)))
        | ((kind == 2) & (xx < W * frac))
        | ((kind == 3) & (xx > W * (1 - frac))),
        _OCCLUDER,
    )

    img = palette[np.arange(n)[:, None, None], label]  # [n, H, W, 3]
    g = (yy / H)[..., None]  # [1, H, 1, 1]
    grad = bg[:, None, None, 0, :] * (1 - g) + bg[:, None, None, 1, :] * g
    np.copyto(img, np.broadcast_to(grad, img.shape), where=(label == 0)[..., None])

    # Camera colour cast (grey for infrared), light, pixel noise.
    gain, bias = p.gain[camid], p.bias[camid]
    if ir.any():
        gain = np.where(ir[:, None], gain.mean(1, keepdims=True), gain)
        bias = np.where(ir[:, None], bias.mean(1, keepdims=True), bias)
    light = p.light[det][:, None]
    img *= (gain * light)[:, None, None, :]
    img += (bias * light)[:, None, None, :]
    noise = p.noise_bank[p.noise[det]]
    if ir.any():
        noise[ir] = noise[ir][..., :1]
    level = np.where(ir, p.infrared_noise_level, p.noise_level).astype(np.float32)
    noise *= level[:, None, None, None]
    img += noise
    img *= 255.0
    np.rint(img, out=img)
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


def render_images(
    params: RenderParams,
    detections: np.ndarray,
    identity: np.ndarray,
    camid: np.ndarray,
    chunk_size: int = 512,
) -> np.ndarray:
    r"""Draws the given detections.

    Args:
        params (RenderParams): The world's render parameters.
        detections (numpy.ndarray): Global detection indices ``[n]``.
        identity (numpy.ndarray): Their identities ``[n]``.
        camid (numpy.ndarray): Their cameras ``[n]``.
        chunk_size (int, optional): Images drawn at once (memory
            :math:`\approx 60\,\cdot` ``chunk_size`` :math:`\cdot HW` bytes).
            (default: :obj:`512`)

    Returns:
        numpy.ndarray: ``[n, H, W, 3]`` uint8 RGB (cost :math:`O(n H W)`).
    """
    H, W = params.size
    out = np.empty((detections.size, H, W, 3), dtype=np.uint8)
    for s in range(0, detections.size, chunk_size):
        e = s + chunk_size
        out[s:e] = _render_chunk(params, detections[s:e], identity[s:e], camid[s:e])
    return out


def write_images(images: np.ndarray, paths: Sequence[str], workers: int = 4) -> None:
    r"""Saves ``images`` ``[n, H, W, 3]`` uint8 to ``paths`` (format from
    the extension, ``.png`` or ``.jpg``), creating folders.

    PNG uses zlib level 1 (about 3x faster than PIL's default, same pixels).
    Files are encoded by ``workers`` threads (PIL releases the GIL while
    encoding); each file is independent, so the output does not depend on
    the scheduling.
    """
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    for folder in {os.path.dirname(p) for p in paths}:
        os.makedirs(folder, exist_ok=True)

    def save(i: int) -> None:
        path = paths[i]
        if path.lower().endswith(".png"):
            Image.fromarray(images[i]).save(path, compress_level=1)
        else:
            Image.fromarray(images[i]).save(path, quality=95)

    if len(paths) != images.shape[0]:
        raise ValueError(
            f"'paths' must name one file per image ({images.shape[0]}), got {len(paths)}"
        )
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(save, range(len(paths))))
