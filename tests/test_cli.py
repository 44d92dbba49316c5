import subprocess
import sys

import pytest

from reidgraph.cli import build_parser, main


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "info" in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_demo_prints_metrics_table(capsys):
    assert main(["demo", "--preset", "tiny", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("name"))
    assert header.split() == ["name", "rank1", "rank5", "rank10", "mAP", "mINP"]
    rows = [line for line in out.splitlines() if line.startswith("cosine")]
    assert len(rows) == 2
    for row in rows:
        values = [float(v) for v in row.split()[-5:]]
        assert all(0.0 <= v <= 100.0 for v in values)
        assert values[0] <= values[1] <= values[2]  # CMC is non-decreasing


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


def test_bad_preset_is_a_clear_error(capsys):
    assert main(["demo", "--preset", "huge"]) == 2
    assert "huge" in capsys.readouterr().err


def test_parser_defaults():
    args = build_parser().parse_args(["demo"])
    assert args.preset == "market-like" and args.seed == 0


def test_python_dash_m_works():
    out = subprocess.run(
        [sys.executable, "-m", "reidgraph", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in out.stdout
