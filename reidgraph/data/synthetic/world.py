r"""The synthetic world as a :class:`~reidgraph.data.ReIDDataset`.

:func:`make_world` runs the four stages (network, walks, appearance,
optional images), splits identities Market-1501-style and returns a
:class:`SyntheticWorld`, which downstream code takes exactly like a real
dataset, plus features and the ground truth that real datasets lack.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from reidgraph._validation import check_choice, check_int
from reidgraph.data.records import ImageRecord, ReIDDataset, ReIDSplit
from reidgraph.data.synthetic.appearance import Appearance, detection_features, make_appearance
from reidgraph.data.synthetic.config import WorldConfig, resolve_config
from reidgraph.data.synthetic.network import CameraNetwork, make_network
from reidgraph.data.synthetic.render import (
    RenderParams,
    make_render_params,
    render_images,
    write_images,
)
from reidgraph.data.synthetic.trajectories import Walks, simulate_walks

__all__ = ["SyntheticWorld", "make_world", "SPLIT_FOLDERS", "IMAGE_FORMATS"]

logger = logging.getLogger(__name__)

#: Folder of each split under the image root (Market-1501's layout).
SPLIT_FOLDERS: dict[str, str] = {
    "train": "bounding_box_train",
    "query": "query",
    "gallery": "bounding_box_test",
}
#: Allowed ``image_format`` values.
IMAGE_FORMATS: tuple[str, ...] = ("png", "jpg")


@dataclass(eq=False, repr=False)
class SyntheticWorld(ReIDDataset):
    r"""A synthetic camera-network world: a :class:`ReIDDataset` with
    features and ground truth.

    Build it with :func:`make_world`. Besides ``train`` / ``query`` /
    ``gallery`` (:class:`ReIDSplit` of :class:`ImageRecord`, ``pid = 0`` for
    gallery distractors), it exposes:

    * :meth:`features` / :meth:`to_data` — L2-normalised features and the
      spine :class:`~torch_geometric.data.Data` of a split;
    * :meth:`render` — the split's images as a uint8 array (with or
      without files on disk);
    * :attr:`network` (camera positions, walkways, :attr:`walk_time`),
      :meth:`atypical` and :meth:`ground_truth` — what the simulator knows
      and real datasets do not.

    Args:
        config (WorldConfig): The parameters it was generated with.
        seed (int): The seed it was generated with.
        network (CameraNetwork): Cameras and walking times.
        walks (Walks): Every visit and detection.
        appearance (Appearance): Identity codes and camera shifts.
        pid_of_identity (numpy.ndarray): ``pid`` of every walker
            ``[num_ids]`` (0 for distractors).
        detection_indices (dict[str, numpy.ndarray]): Global detection index
            of each record of each split.
    """

    config: WorldConfig | None = None
    seed: int = 0
    network: CameraNetwork | None = None
    walks: Walks | None = None
    appearance: Appearance | None = None
    pid_of_identity: np.ndarray | None = None
    detection_indices: dict[str, np.ndarray] = field(default_factory=dict)
    _features: dict[str, torch.Tensor] = field(default_factory=dict)
    _render_params: RenderParams | None = None
    _render_seed: Any = None
    _tmpdir: Any = None

    # ------------------------------------------------------------------ splits
    def split(self, split: str | ReIDSplit) -> ReIDSplit:
        r"""The split named ``"train"``, ``"query"`` or ``"gallery"``."""
        return getattr(self, self._name(split))

    def _name(self, split: str | ReIDSplit) -> str:
        if isinstance(split, ReIDSplit):
            split = split.name
        return check_choice(split, "split", tuple(SPLIT_FOLDERS))

    def features(self, split: str | ReIDSplit) -> torch.Tensor:
        r"""L2-normalised features of a split, one row per record.

        Args:
            split (str): ``"train"``, ``"query"`` or ``"gallery"``.

        Returns:
            torch.Tensor: ``[n, d]`` float32 (the world's own tensor; clone
            it before changing it in place).
        """
        return self._features[self._name(split)]

    def to_data(self, split: str | ReIDSplit) -> Data:
        r"""The spine graph (``x, camid, time, modality, pid``; no edges) of
        a split, via :meth:`ReIDSplit.to_data`.

        Example:
            >>> data = make_world("tiny").to_data("train")
            >>> data.x.shape[0] == data.camid.shape[0]
            True
        """
        name = self._name(split)
        return getattr(self, name).to_data(self._features[name])

    # ------------------------------------------------------------ ground truth
    @property
    def walk_time(self) -> np.ndarray:
        r"""Shortest walking time in seconds between cameras ``[C, C]`` at
        the nominal speed (:attr:`CameraNetwork.walk_time`)."""
        return self.network.walk_time

    def atypical(self, split: str | ReIDSplit) -> np.ndarray:
        r"""Whether each record's visit followed an atypical stop ``[n]`` bool
        (its transition time exceeds the walking time by a ``stop_range``
        stop; G-Fusion Fig. 1(b))."""
        return self.walks.atypical[self.detection_indices[self._name(split)]]

    def ground_truth(self, split: str | ReIDSplit) -> dict[str, np.ndarray]:
        r"""Per-record simulator state of a split.

        Returns:
            dict[str, numpy.ndarray]: Arrays ``[n]``: ``detection`` (global
            index), ``identity`` (walker, distinguishes distractors that all
            have ``pid = 0``), ``visit`` (global visit), ``visit_order``
            (position on the route), ``atypical``, ``stop`` (seconds
            stopped before the visit), ``party`` (companions share it),
            ``lookalike`` (look-alike group), ``speed`` (speed factor).
        """
        idx = self.detection_indices[self._name(split)]
        w = self.walks
        ident = w.identity[idx]
        visit = w.visit[idx]
        return {
            "detection": idx,
            "identity": ident,
            "visit": visit,
            "visit_order": w.visit_order[visit],
            "atypical": w.visit_stop[visit] > 0,
            "stop": w.visit_stop[visit],
            "party": w.party[ident],
            "lookalike": self.appearance.lookalike[ident],
            "speed": w.speed[ident],
        }

    # ------------------------------------------------------------------ images
    def render(self, split: str | ReIDSplit, index: Any = None) -> np.ndarray:
        r"""Draws a split's images in memory (same pixels as the files
        written with ``images=True``, before PNG/JPEG encoding).

        Args:
            split (str): ``"train"``, ``"query"`` or ``"gallery"``.
            index (array-like, optional): Row positions within the split.
                (default: :obj:`None`, all)

        Returns:
            numpy.ndarray: ``[n, H, W, 3]`` uint8 RGB.
        """
        idx = self.detection_indices[self._name(split)]
        if index is not None:
            pos = np.asarray(index, dtype=np.int64).reshape(-1)
            if pos.size and (pos.min() < -idx.size or pos.max() >= idx.size):
                raise ValueError(
                    f"'index' must hold positions in [0, {idx.size}) of split "
                    f"'{self._name(split)}', got range [{pos.min()}, {pos.max()}]"
                )
            idx = idx[pos]
        p = self._params()
        return render_images(p, idx, self.walks.identity[idx], self.walks.camid[idx])

    def _params(self) -> RenderParams:
        if self._render_params is None:
            cfg = self.config
            self._render_params = make_render_params(
                self.appearance.codes,
                self.network.infrared,
                self.walks.visit,
                self.walks.visit_camid.size,
                cfg.image_size,
                cfg.occlusion_prob,
                cfg.infrared_noise_scale,
                np.random.default_rng(self._render_seed),
            )
        return self._render_params

    def cleanup(self) -> None:
        r"""Removes the temporary image folder, if :func:`make_world` made one."""
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None


def _file_names(pid: np.ndarray, camid: np.ndarray, frame: np.ndarray, ext: str) -> list[str]:
    # Market-1501 names: {pid:04d}_c{cam}s1_{frame:06d}_{k:02d}, where k counts
    # records sharing (pid, cam, frame) so every name is unique.
    order = np.lexsort((frame, camid, pid))
    key = np.stack([pid[order], camid[order], frame[order]], axis=1)
    new = np.ones(order.size, dtype=bool)
    new[1:] = (key[1:] != key[:-1]).any(1)
    start = np.maximum.accumulate(np.where(new, np.arange(order.size), 0))
    k = np.empty(order.size, dtype=np.int64)
    k[order] = np.arange(order.size) - start
    return [
        f"{p:04d}_c{c + 1}s1_{f:06d}_{j:02d}.{ext}"
        for p, c, f, j in zip(pid.tolist(), camid.tolist(), frame.tolist(), k.tolist(), strict=True)
    ]


def _assign_splits(
    config: WorldConfig, walks: Walks, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    n, n_tr, n_te = config.num_ids, config.num_train_ids, config.num_test_ids
    perm = rng.permutation(n)
    pid = np.zeros(n, dtype=np.int64)
    pid[perm[:n_tr]] = np.arange(1, n_tr + 1)
    pid[perm[n_tr : n_tr + n_te]] = np.arange(n_tr + 1, n_tr + n_te + 1)
    role = np.full(n, 2, dtype=np.int64)
    role[perm[:n_tr]] = 0
    role[perm[n_tr : n_tr + n_te]] = 1
    det_role = role[walks.identity]
    train = np.flatnonzero(det_role == 0)
    test = np.flatnonzero(det_role == 1)
    # One query per (identity, camera), uniformly among its detections there
    # (Market-1501); the rest of the test detections and all distractor
    # detections form the gallery.
    order = np.lexsort((rng.random(test.size), walks.camid[test], pid[walks.identity[test]]))
    test = test[order]
    p, c = pid[walks.identity[test]], walks.camid[test]
    first = np.ones(test.size, dtype=bool)
    first[1:] = (p[1:] != p[:-1]) | (c[1:] != c[:-1])
    gallery = np.concatenate([test[~first], np.flatnonzero(det_role == 2)])

    def by_time(idx: np.ndarray) -> np.ndarray:
        return idx[np.lexsort((walks.identity[idx], walks.camid[idx], walks.frame[idx]))]

    return pid, {
        "train": by_time(train),
        "query": by_time(test[first]),
        "gallery": by_time(gallery),
    }


def make_world(
    preset: str | WorldConfig = "tiny",
    *,
    seed: int = 0,
    modalities: str | None = None,
    images: bool = False,
    root: str | os.PathLike | None = None,
    image_format: str = "png",
    verbose: bool = True,
    **overrides: Any,
) -> SyntheticWorld:
    r"""Generates a synthetic camera-network world (see :class:`WorldConfig`
    for the model and its parameters).

    Identities are split at random into ``num_train_ids`` train identities
    (``pid`` 1 .. ``num_train_ids``), ``num_test_ids`` test identities (the
    next pids) and ``num_distractor_ids`` distractor walkers. As in
    Market-1501, each test identity gives one query per camera it was seen
    in (chosen at random among its detections there) and the rest of its
    detections go to the gallery, together with every distractor detection
    (``pid = 0``, matching no query). Records of each split are in time
    order (ties by camera), so the row order carries no identity.

    The same ``seed`` gives the same world bit for bit: four child seeds of
    ``numpy.random.SeedSequence(seed)`` drive the network, the walks, the
    appearance and the split, and a fifth the images, so asking for images
    or changing ``image_size`` never changes the features. No global random
    state is read or changed.

    With ``images=True`` every record is drawn (:meth:`SyntheticWorld.render`)
    and saved under ``root`` in Market-1501's layout
    (``bounding_box_train/``, ``query/``, ``bounding_box_test/``, names
    ``{pid:04d}_c{camid+1}s1_{frame:06d}_{k:02d}.png``), and
    ``record.path`` is the absolute file path. Without ``root`` a
    :class:`tempfile.TemporaryDirectory` is used; it is deleted by
    :meth:`SyntheticWorld.cleanup` or when the world is garbage-collected.
    The pixels are deterministic (same seed, same pixels).

    Args:
        preset (str or WorldConfig, optional): ``"tiny"``, ``"small"``,
            ``"market-like"``, ``"large"`` (:data:`PRESETS`) or a config.
            (default: :obj:`"tiny"`)
        seed (int, optional): Seed, :math:`\geq 0`. (default: :obj:`0`)
        modalities (str, optional): ``"visible"`` or ``"visible-infrared"``;
            :obj:`None` keeps the preset's. (default: :obj:`None`)
        images (bool, optional): Render and save the images.
            (default: :obj:`False`)
        root (str, optional): Image folder. (default: :obj:`None`, temporary)
        image_format (str, optional): ``"png"`` (lossless) or ``"jpg"``.
            (default: :obj:`"png"`)
        verbose (bool, optional): Progress bar while writing images (no
            bar for a features-only world). (default: :obj:`True`)
        **overrides: Any :class:`WorldConfig` field, replacing the preset's.

    Returns:
        SyntheticWorld: The dataset (features-only cost :math:`O(N d)` time
        and memory for :math:`N` detections).

    Raises:
        ValueError: Unknown preset (the message lists them), nonsense
            parameter values, a bad ``modalities`` or ``image_format``.
        TypeError: An override that is no :class:`WorldConfig` field.

    Example:
        >>> world = make_world("tiny", seed=0)
        >>> x = world.features("query")
        >>> x.shape[1] == world.config.feature_dim
        True
    """
    if modalities is not None:
        overrides["modalities"] = modalities
    config = resolve_config(preset, **overrides)
    seed = check_int(seed, "seed", min_value=0)
    if not isinstance(images, bool):
        raise TypeError(f"'images' must be a bool, got {type(images).__name__}")
    image_format = check_choice(image_format, "image_format", IMAGE_FORMATS)
    if root is not None and not images:
        raise ValueError(f"'root' was given ({os.fspath(root)!r}) but images=False")
    t_start = time.perf_counter()

    net_seed, walk_seed, app_seed, split_seed, render_seed = np.random.SeedSequence(seed).spawn(5)
    network = make_network(
        config.num_cameras,
        config.area,
        config.walk_speed,
        config.infrared_camera_ids,
        np.random.default_rng(net_seed),
    )
    walks = simulate_walks(config, network, np.random.default_rng(walk_seed))
    app_rng = np.random.default_rng(app_seed)
    appearance = make_appearance(config, network, app_rng)
    feats = detection_features(config, appearance, network, walks, app_rng)
    pid_of_identity, indices = _assign_splits(config, walks, np.random.default_rng(split_seed))

    tmpdir = None
    if images:
        if root is None:
            tmpdir = tempfile.TemporaryDirectory(prefix="reidgraph-synthetic-")
            root = tmpdir.name
        root = os.path.abspath(os.fspath(root))
    modality = network.modality
    splits: dict[str, ReIDSplit] = {}
    for name, idx in indices.items():
        pid = pid_of_identity[walks.identity[idx]]
        cam = walks.camid[idx]
        frame = walks.frame[idx]
        if images:
            folder = os.path.join(root, SPLIT_FOLDERS[name])
            paths = [os.path.join(folder, f) for f in _file_names(pid, cam, frame, image_format)]
        else:
            paths = [""] * idx.size
        splits[name] = ReIDSplit(
            [
                ImageRecord(path, p, c, t, f, m, name)
                for path, p, c, t, f, m in zip(
                    paths,
                    pid.tolist(),
                    cam.tolist(),
                    walks.time[idx].tolist(),
                    frame.tolist(),
                    modality[cam].tolist(),
                    strict=True,
                )
            ],
            name,
        )

    preset_name = preset if isinstance(preset, str) else "custom"
    world = SyntheticWorld(
        name=f"synthetic-{preset_name.lower()}",
        train=splits["train"],
        query=splits["query"],
        gallery=splits["gallery"],
        root=root if images else None,
        has_time=True,
        extra={"fps": config.fps, "seed": seed, "preset": preset_name},
        config=config,
        seed=seed,
        network=network,
        walks=walks,
        appearance=appearance,
        pid_of_identity=pid_of_identity,
        detection_indices=indices,
        _features={k: torch.from_numpy(feats[v]) for k, v in indices.items()},
        _render_seed=render_seed,
        _tmpdir=tmpdir,
    )
    logger.info(
        "synthetic world %r (seed %d): %d detections in %.2f s",
        world.name,
        seed,
        walks.num_detections,
        time.perf_counter() - t_start,
    )
    if images:
        _write_split_images(world, verbose)
    return world


def _write_split_images(world: SyntheticWorld, verbose: bool, chunk: int = 1024) -> None:
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    total = sum(len(s) for s in world.splits())
    with tqdm(total=total, desc="rendering", unit="img", disable=not verbose) as bar:
        for split in world.splits():
            paths = split.paths
            for s in range(0, len(split), chunk):
                rows = np.arange(s, min(s + chunk, len(split)))
                write_images(world.render(split.name, rows), paths[s : s + chunk])
                bar.update(rows.size)
    logger.info("wrote %d images under %s in %.2f s", total, world.root, time.perf_counter() - t0)
