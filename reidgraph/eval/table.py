r"""Plain-text tables of evaluation results, for logs and the command line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["format_table"]

_RANKS = (1, 5, 10, 20)


def _row(result: Mapping[str, Any], ranks: Sequence[int]) -> tuple[dict[str, float], dict]:
    if "mean" in result:  # aggregated over trials: mean +- std
        return dict(result["mean"]), dict(result.get("std", {}))
    cmc = result["cmc"]
    vals = {f"rank{r}": float(cmc[r - 1]) for r in ranks if r <= len(cmc)}
    vals["mAP"] = float(result["mAP"])
    vals["mINP"] = float(result["mINP"])
    return vals, {}


def format_table(
    results: Mapping[str, Any] | Mapping[str, Mapping[str, Any]],
    ranks: Sequence[int] = _RANKS,
    percent: bool = True,
    digits: int = 2,
) -> str:
    r"""Formats one result, or several named ones, as an aligned text table.

    Accepts outputs of :func:`~reidgraph.eval.evaluate`,
    :func:`~reidgraph.eval.evaluate_regdb` (one row) and of
    :func:`~reidgraph.eval.evaluate_sysu` / :func:`~reidgraph.eval.aggregate_trials`
    (``mean ± std``), or a dict mapping row names to such results.

    Args:
        results (dict): A result dict, or ``{name: result}``.
        ranks (list[int], optional): CMC ranks to show. (default:
            :obj:`(1, 5, 10, 20)`)
        percent (bool, optional): Show values in percent. (default: :obj:`True`)
        digits (int, optional): Decimals. (default: :obj:`2`)

    Returns:
        str: The table, one line per row, columns ``rank1 ... mAP mINP``.

    Example:
        >>> import torch
        >>> print(format_table({"cmc": torch.tensor([0.5, 1.0]), "mAP": 0.25, "mINP": 0.125}))
        name  rank1  mAP    mINP
        -     50.00  25.00  12.50
    """
    if not isinstance(results, Mapping):
        raise TypeError(f"'results' must be a dict, got {type(results).__name__}")
    single = "cmc" in results or "mean" in results
    named = {"-": results} if single else dict(results)
    if not named:
        raise ValueError("'results' is empty: nothing to format")
    scale = 100.0 if percent else 1.0
    rows = []
    for name, res in named.items():
        if not isinstance(res, Mapping) or not ("cmc" in res or "mean" in res):
            raise ValueError(
                f"'results[{name!r}]' is not a result dict (needs 'cmc' or 'mean' keys)"
            )
        rows.append((str(name), *_row(res, ranks)))
    seen: list[str] = []
    for _, vals, _ in rows:  # union of the rows' columns: ranks ascending, then the rest
        seen += [c for c in vals if c not in seen]
    columns = sorted(seen, key=lambda c: (0, int(c[4:])) if c[4:].isdigit() else (1, seen.index(c)))
    cells = [["name", *columns]]
    for name, vals, std in rows:
        line = [name]
        for col in columns:
            if col not in vals:
                line.append("-")
            elif col in std:
                line.append(f"{vals[col] * scale:.{digits}f}±{std[col] * scale:.{digits}f}")
            else:
                line.append(f"{vals[col] * scale:.{digits}f}")
        cells.append(line)
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )
