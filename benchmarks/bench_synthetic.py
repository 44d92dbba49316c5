"""Time budgets of the synthetic camera-network world.

Times ``make_world`` for each preset (features only), the image path
(in-memory rendering and writing PNG files), and the vectorised feature
generation against a per-detection Python loop computing the same features
(the straightforward way), printing the ratio.

    python benchmarks/bench_synthetic.py            # all presets
    python benchmarks/bench_synthetic.py --quick    # < 60 s
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from reidgraph.data.synthetic import make_world
from reidgraph.data.synthetic.appearance import detection_features


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def loop_features(world, seed: int) -> np.ndarray:
    """The same features as ``detection_features``, one detection at a time
    (same random draws, so the outputs must agree)."""
    cfg, w, app = world.config, world.walks, world.appearance
    d = cfg.feature_dim
    rng = np.random.default_rng(seed)
    scale = np.float32(1.0 / np.sqrt(d))
    visit_noise = rng.standard_normal((w.visit_camid.size, d), dtype=np.float32)
    visit_noise *= np.float32(cfg.visit_noise) * scale
    det_noise = rng.standard_normal((w.num_detections, d), dtype=np.float32)
    det_noise *= np.float32(cfg.detection_noise) * scale
    out = np.empty((w.num_detections, d), dtype=np.float32)
    for n in range(w.num_detections):
        c, p = w.camid[n], w.identity[n]
        noise = det_noise[n] + visit_noise[w.visit[n]]
        if world.network.infrared[c]:
            noise = noise * np.float32(cfg.infrared_noise_scale)
        x = noise + app.camera_codes[c, p] + app.camera_shift[c]
        out[n] = x / np.linalg.norm(x)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, < 60 s")
    args = parser.parse_args()
    presets = ["tiny", "small", "market-like"] + ([] if args.quick else ["large"])
    make_world("tiny")  # first-call overheads

    print(f"{'preset':12s} {'detections':>10s} {'make_world (features)':>22s}")
    for name in presets:
        world = make_world(name, seed=0)
        t = best_of(lambda name=name: make_world(name, seed=1), 1 if name == "large" else 3)
        print(f"{name:12s} {world.walks.num_detections:10d} {t:20.3f} s")

    print("\nimages (64x32):")
    for name in ["tiny"] if args.quick else ["tiny", "small"]:
        world = make_world(name, seed=0)
        n = world.walks.num_detections
        t_render = best_of(lambda w=world: [w.render(s) for s in ("train", "query", "gallery")], 1)
        with tempfile.TemporaryDirectory() as root:
            t0 = time.perf_counter()
            make_world(name, seed=0, images=True, root=root)
            t_files = time.perf_counter() - t0
            size = sum(
                os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(root) for f in fs
            )
        print(
            f"{name:12s} {n:6d} images: render {t_render:.2f} s ({n / t_render:,.0f} img/s), "
            f"make_world(images=True) {t_files:.2f} s, {size / 2**20:.1f} MiB on disk"
        )

    print("\nfeatures: vectorised vs per-detection loop")
    name = "small" if args.quick else "market-like"
    world = make_world(name, seed=0)
    rng_seed = 123
    t_vec = best_of(
        lambda: detection_features(
            world.config,
            world.appearance,
            world.network,
            world.walks,
            np.random.default_rng(rng_seed),
        ),
        3,
    )
    t0 = time.perf_counter()
    ref = loop_features(world, rng_seed)
    t_loop = time.perf_counter() - t0
    ours = detection_features(
        world.config, world.appearance, world.network, world.walks, np.random.default_rng(rng_seed)
    )
    err = float(np.abs(ours - ref).max())
    print(
        f"{name}: vectorised {t_vec:.3f} s, loop {t_loop:.3f} s, "
        f"speed-up x{t_loop / t_vec:.1f}, max |diff| {err:.1e}"
    )


if __name__ == "__main__":
    main()
