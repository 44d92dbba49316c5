"""Throughput of the training loop against a bare PyTorch loop, and the share of graph work.

Our way: one epoch of ``reidgraph.train.fit`` with the baseline recipe (cluster
contrast), which logs images/s of the training steps, seconds of feature
extraction and of graph work (Jaccard distance + DBSCAN + memory), and the graph
share of the epoch. Reference way: the same steps written as a bare loop (same
model, labels, sampler, memory, loss, Adam), without the loop's logging, NaN
check, hooks or progress bar. The ratio says what the shared loop costs.

    python benchmarks/bench_train_step.py --quick           # CPU, < 60 s
    python benchmarks/bench_train_step.py --depth 50 --device cuda --preset market-like
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import torch


def bare_loop(world, cfg, labels, steps: int, device: torch.device) -> float:
    from reidgraph.data.image_dataset import ImageDataset, collate_images
    from reidgraph.data.samplers import RandomIdentitySampler
    from reidgraph.data.transforms import build_transforms
    from reidgraph.losses import cluster_nce
    from reidgraph.models import ReIDNet
    from reidgraph.nn.memory import ClusterMemory
    from reidgraph.train import extract_features

    torch.manual_seed(cfg.seed)
    model = ReIDNet(cfg.depth, last_stride=cfg.last_stride).to(device)
    images = world.render("train")
    test_tf = build_transforms(cfg.height, cfg.width, train=False)
    x = extract_features(
        model,
        ImageDataset(world.train, test_tf, images=images),
        flip=cfg.flip,
        device=device,
        verbose=False,
        out_device=device,
    )
    memory = ClusterMemory(x.size(1)).to(device)
    memory.reset(x, labels.to(device))
    train_tf = build_transforms(cfg.height, cfg.width, train=True, pad=cfg.augmentation_pad())
    sampler = RandomIdentitySampler(labels, cfg.batch_size, cfg.num_instances, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(
        ImageDataset(world.train, train_tf, images=images), batch_size=cfg.batch_size,
        sampler=sampler, collate_fn=collate_images, num_workers=cfg.num_workers,
        drop_last=True,
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    model.train()
    labels = labels.to(device)
    n, it = 0, iter(loader)
    start = time.perf_counter()
    for _ in range(steps):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        img, idx = batch["img"].to(device), batch["index"].to(device)
        out = model(img)
        loss = cluster_nce(out.bn_feat, labels[idx], memory)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            memory.update(out.bn_feat, labels[idx])
        float(loss)  # the same one host sync per step as the loop
        n += img.size(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny world, ResNet-18, 32x16, 6 steps")
    p.add_argument("--preset", default="small")
    p.add_argument("--depth", type=int, default=18)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    import reidgraph.labelers  # noqa: F401 (import time is not graph work)
    from reidgraph.data import make_world
    from reidgraph.train import fit
    from reidgraph.train.recipes import ClusterContrast

    size = dict(height=32, width=16, last_stride=1) if args.quick else dict(height=64, width=32)
    preset, steps = ("tiny", 6) if args.quick else (args.preset, args.steps)
    batch = 16 if args.quick else args.batch_size
    world = make_world(preset, seed=0, verbose=False)
    recipe = ClusterContrast(eps=0.5, k1=10, k2=3) if args.quick else ClusterContrast()
    with tempfile.TemporaryDirectory() as out:
        cfg = recipe.config(
            depth=args.depth, epochs=1, iters=steps, batch_size=batch, num_instances=4,
            num_workers=0, device=args.device, output_dir=out, verbose=False,
            checkpoint_every=0, eval_every=0, flip=False, **size,
        )  # fmt: skip
        labels = {}

        class Keep(type(recipe)):
            def on_labels(self, state):
                super().on_labels(state)
                labels["y"] = state.labels.cpu()

        keep = Keep(**recipe.get_params())
        # eval_every=0 still evaluates after the last epoch: drop query/gallery.
        import dataclasses

        from reidgraph.data.records import ReIDSplit

        train_only = dataclasses.replace(
            world, query=ReIDSplit([], "query"), gallery=ReIDSplit([], "gallery")
        )
        t0 = time.perf_counter()
        row = fit(keep, train_only, cfg).history[0]
        total = time.perf_counter() - t0
    ref = bare_loop(world, cfg, labels["y"], steps, torch.device(args.device))
    print(
        f"{world!r}, ResNet-{args.depth}, {cfg.height}x{cfg.width}, batch {batch}, "
        f"{steps} steps, device {args.device}"
    )
    print(f"  fit():      {row['images_per_s']:8.1f} images/s (training steps)")
    print(f"  bare loop:  {ref:8.1f} images/s")
    print(f"  ratio fit / bare: {row['images_per_s'] / ref:.2f}")
    print(
        f"  epoch {row['epoch_s']:.1f} s: extraction {row['extract_s']:.1f} s, graph work "
        f"{row['graph_s']:.1f} s ({100 * row['graph_share']:.1f}% of the epoch), training "
        f"{row['train_s']:.1f} s; {row['num_clusters']} clusters; whole fit {total:.1f} s"
    )


if __name__ == "__main__":
    main()
