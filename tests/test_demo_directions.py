"""`reidgraph demo --quick` (the small synthetic world, seed 0): it writes its table and
pictures, and the re-rankers move mAP in the directions their papers report."""

from __future__ import annotations

import csv

import pytest

from reidgraph.cli import DEMO_ROWS, main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--seed", "0", "--out", str(out)]) == 0
    with open(out / "results.csv") as f:
        rows = {
            r["method"]: {k: float(v) for k, v in r.items() if k != "method"}
            for r in csv.DictReader(f)
        }
    return out, rows


def test_demo_writes_table_and_pictures(demo):
    out, rows = demo
    assert list(rows) == list(DEMO_ROWS)
    for name in ("transitions.png", "rank_list.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_camera_centred_features_beat_raw(demo):
    # IICS Eq. 3 (f = A_p + S_c + E_n): removing the camera mean S_c helps cross-camera retrieval.
    _, rows = demo
    assert rows["baseline"]["mAP"] > rows["baseline (raw features)"]["mAP"] + 5


def test_k_reciprocal_improves_map(demo):
    # Zhong et al. CVPR 2017, Table 1: re-ranking raises mAP over the baseline.
    _, rows = demo
    assert rows["+ k-reciprocal"]["mAP"] > rows["baseline"]["mAP"] + 2


def test_tlift_improves_map(demo):
    # QAConv-TLift Table 3: temporal lifting of (calibrated) matching scores raises mAP.
    _, rows = demo
    assert rows["+ TLift"]["mAP"] > rows["baseline"]["mAP"] + 2


def test_gfusion_table2_directions(demo):
    _, rows = demo
    base, vis, st = (rows[k]["mAP"] for k in ("baseline", "+ G-Fusion (visual)", "+ G-Fusion (ST)"))
    assert st > vis + 3  # Table 2, row 4 vs row 3
    assert st > base + 3  # row 4 vs row 0
    assert abs(vis - base) < 4  # row 3 vs row 0: visual-only re-ranking ~ baseline (-0.1)
