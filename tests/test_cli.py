import csv
import subprocess
import sys

import numpy as np
import pytest
import torch

from reidgraph.cli import DEMO_ROWS, build_parser, main


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "info" in out and "rerank" in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def _table(out: str) -> dict[str, list[float]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("method"))
    header = lines[start].split()
    assert header == ["method", "mAP", "rank1", "rank5", "rank10", "mINP", "seconds"]
    rows = {}
    for line in lines[start + 1 :]:
        parts = line.split()
        try:
            values = [float(v) for v in parts[-6:]]
        except ValueError:
            break
        rows[" ".join(parts[:-6])] = values
    return rows


def test_demo_tiny_prints_and_saves_table(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    assert main(["demo", "--preset", "tiny", "--no-plots", "--out", str(out_dir)]) == 0
    rows = _table(capsys.readouterr().out)
    assert list(rows) == list(DEMO_ROWS)
    for m_ap, r1, r5, r10, minp, secs in rows.values():
        assert all(0.0 <= v <= 100.0 for v in (m_ap, r1, r5, r10, minp))
        assert r1 <= r5 <= r10  # CMC is non-decreasing
        assert secs >= 0.0
    with open(out_dir / "results.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["method"] for r in csv_rows] == list(DEMO_ROWS)
    for r in csv_rows:  # the CSV holds the printed numbers, unrounded
        assert float(r["mAP"]) == pytest.approx(rows[r["method"]][0], abs=0.006)
    assert not list(out_dir.glob("*.png"))  # --no-plots


def test_info_synthetic(capsys):
    assert main(["info", "--preset", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "gallery" in out and "cameras=" in out


def test_info_real_dataset_needs_root(capsys):
    assert main(["info", "--dataset", "market1501"]) == 2
    assert "--data-root is required" in capsys.readouterr().err


def test_info_missing_root_is_a_clear_error(tmp_path, capsys):
    assert main(["info", "--dataset", "market1501", "--data-root", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "bounding_box_train" in err


def test_bad_preset_is_a_clear_error(tmp_path, capsys):
    assert main(["demo", "--preset", "huge", "--out", str(tmp_path)]) == 2
    assert "huge" in capsys.readouterr().err


def test_quick_contradicting_preset_is_refused(tmp_path, capsys):
    assert main(["demo", "--quick", "--preset", "tiny", "--out", str(tmp_path)]) == 2
    assert "--quick means --preset small" in capsys.readouterr().err


def test_parser_defaults():
    args = build_parser().parse_args(["demo"])
    assert args.preset == "market-like" and args.seed == 0
    assert args.out.replace("\\", "/") == "runs/demo" and not args.quick and not args.no_plots
    assert (args.k_s, args.k_l, args.delta, args.transition_k) == (3, 60, 1.0, 10)
    assert (args.k1, args.k2, args.lambda_value) == (20, 6, 0.3)


def test_python_dash_m_works():
    out = subprocess.run(
        [sys.executable, "-m", "reidgraph", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in out.stdout


# ----------------------------------------------------------------------------- rerank
@pytest.fixture(scope="module")
def features_npz(tmp_path_factory):
    from reidgraph.data.synthetic import make_world
    from reidgraph.rerank.npz import save_features

    world = make_world("tiny", seed=0)
    path = tmp_path_factory.mktemp("rr") / "features.npz"
    q, g, t = (world.to_data(s) for s in ("query", "gallery", "train"))
    save_features(path, q, g, t)
    return path, q, g


def test_rerank_k_reciprocal_writes_ranking_and_metrics(features_npz, tmp_path, capsys):
    from reidgraph.rerank.k_reciprocal import k_reciprocal_features

    path, q, g = features_npz
    out = tmp_path / "kr.npz"
    assert main(["rerank", "--method", "k_reciprocal", "--input", str(path), "--output",
                 str(out), "--top-k", "7"]) == 0  # fmt: skip
    rows = capsys.readouterr().out
    assert "baseline" in rows and "k_reciprocal" in rows
    res = np.load(out)
    assert set(res.files) == {"method", "distance", "ranked_index", "ranked_distance"}
    # Features are already L2-normalised in the world, so normalising changes nothing.
    expected = k_reciprocal_features(q.x, g.x).numpy()
    np.testing.assert_allclose(res["distance"], expected, atol=1e-6)
    np.testing.assert_array_equal(
        res["ranked_index"], np.argsort(expected, axis=1, kind="stable")[:, :7]
    )


def test_rerank_tlift_and_gfusion(features_npz, tmp_path, capsys):
    path, q, g = features_npz
    out = tmp_path / "t.npz"
    assert main(["rerank", "--method", "tlift", "--input", str(path), "--output", str(out),
                 "--no-matrix"]) == 0  # fmt: skip
    assert "Platt scaling on 155 training images" in capsys.readouterr().out
    res = np.load(out)
    assert set(res.files) == {"method", "ranked_index", "ranked_similarity"}
    assert res["ranked_index"].shape == (q.num_nodes, min(100, g.num_nodes))
    assert np.all(np.diff(res["ranked_similarity"], axis=1) <= 0)  # best first
    out = tmp_path / "g.npz"
    assert main(["rerank", "--method", "gfusion", "--input", str(path), "--output", str(out),
                 "--k-l", "20"]) == 0  # fmt: skip
    assert "visual + spatio-temporal" in capsys.readouterr().out
    assert np.load(out)["distance"].shape == (q.num_nodes, g.num_nodes)


def test_rerank_gfusion_without_train_is_visual_only(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "f.npz"
    np.savez(path, query_features=rng.normal(size=(3, 8)), gallery_features=rng.normal(size=(9, 8)))
    out = tmp_path / "o.npz"
    assert main(["rerank", "--method", "gfusion", "--input", str(path), "--output", str(out),
                 "--k-l", "5"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "visual only" in printed and "mAP" not in printed  # no pids, no metrics
    assert np.load(out)["ranked_index"].shape == (3, 9)


def test_rerank_errors_are_clear(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "f.npz"
    np.savez(path, query_features=rng.normal(size=(3, 8)), gallery_features=rng.normal(size=(9, 8)))
    out = str(tmp_path / "o.npz")
    assert main(["rerank", "--method", "tlift", "--input", str(path), "--output", out]) == 2
    assert "'query_camids'" in capsys.readouterr().err
    bad = tmp_path / "b.npz"
    np.savez(bad, query_features=np.ones((2, 3)))
    assert main(["rerank", "--method", "k_reciprocal", "--input", str(bad), "--output", out]) == 2
    assert "missing required key(s) [\"'gallery_features'" in capsys.readouterr().err
    assert main(["rerank", "--method", "gfusion", "--input", str(tmp_path / "x.npz"),
                 "--output", out]) == 2  # fmt: skip
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["rerank", "--method", "magic", "--input", str(path), "--output", out])


def test_rerank_metrics_match_library(features_npz, tmp_path, capsys):
    from reidgraph.eval import evaluate
    from reidgraph.ops import pairwise_distance

    path, q, g = features_npz
    assert main(["rerank", "--method", "k_reciprocal", "--input", str(path), "--output",
                 str(tmp_path / "o.npz")]) == 0  # fmt: skip
    rows = _table(capsys.readouterr().out)
    base = evaluate(pairwise_distance(q.x, g.x, metric="cosine"), q.pid, g.pid, q.camid, g.camid)
    assert rows["baseline"][0] == pytest.approx(100 * base["mAP"], abs=0.006)
    assert torch.is_tensor(base["cmc"])


def test_rerank_tlift_needs_calibration(tmp_path, capsys):
    rng = np.random.default_rng(0)
    arrays = dict(
        query_features=rng.normal(size=(4, 8)),
        gallery_features=rng.normal(size=(9, 8)),
        query_camids=np.array([0, 1, 0, 1]),
        gallery_camids=np.arange(9) % 2,
        query_times=np.arange(4.0),
        gallery_times=np.arange(9.0),
    )
    path = tmp_path / "f.npz"
    np.savez(path, **arrays)
    out = tmp_path / "o.npz"
    assert main(["rerank", "--method", "tlift", "--input", str(path), "--output", str(out)]) == 2
    assert "TLift needs a calibrated similarity" in capsys.readouterr().err
    assert main(["rerank", "--method", "tlift", "--input", str(path), "--output", str(out),
                 "--sigmoid", "0.5", "0.05"]) == 0  # fmt: skip
    assert "sigmoid(-(d - 0.5) / 0.05), given by --sigmoid" in capsys.readouterr().out
    sim = np.load(out)["similarity"]
    assert sim.shape == (4, 9) and np.all(sim >= 0)
