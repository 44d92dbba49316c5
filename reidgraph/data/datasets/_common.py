r"""Checks and helpers shared by the dataset parsers.

Every parser fails with an error that names the path it looked at and shows
the expected on-disk tree (the same trees as ``datasets/README.md``), so a
user pointing the library at the wrong folder sees what it wanted.

Paths: records hold **absolute** paths (``os.path.abspath`` of the root,
symlinks not resolved, joined with the file's own relative path), so records
from different roots can be mixed and images open regardless of the working
directory. The file names are never changed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from reidgraph.data.images import IMAGE_EXTENSIONS, ImageReadError, verify_image
from reidgraph.data.records import ImageRecord, ReIDSplit

__all__ = [
    "DatasetLayoutError",
    "DatasetNotFoundError",
    "check_root",
    "find_layout_root",
    "find_layout_variant",
    "list_images",
    "parse_names",
    "read_id_list",
    "read_path_label_list",
    "check_files_exist",
    "check_nonempty",
    "verify_split_images",
    "make_split",
    "MARKET_STYLE_FOLDERS",
    "scan_market_style",
]

logger = logging.getLogger(__name__)

_MAX_LISTED = 10


class DatasetLayoutError(ValueError):
    r"""A dataset folder whose content does not match the expected layout
    (unparseable file name, bad list file, empty split)."""


class DatasetNotFoundError(DatasetLayoutError, FileNotFoundError):
    r"""A dataset folder or file that is not where the layout expects it."""


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(repr(s) for s in items[:_MAX_LISTED])
    more = f" and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return shown + more


def _expected(layout: str) -> str:
    return f"\nExpected layout:\n{layout.rstrip()}"


def check_root(root: str | os.PathLike, dataset: str, layout: str) -> str:
    r"""Returns ``root`` as an absolute path after checking it is a folder."""
    if not isinstance(root, str | os.PathLike):
        raise TypeError(
            f"'root' must be a path (str or os.PathLike) to the {dataset} folder, "
            f"got {type(root).__name__}"
        )
    path = os.path.abspath(os.fspath(root))
    if not os.path.isdir(path):
        raise DatasetNotFoundError(
            f"'root' of {dataset} is not a folder: '{path}' does not exist"
            f"{' (it is a file)' if os.path.exists(path) else ''}" + _expected(layout)
        )
    return path


def find_layout_root(
    root: str | os.PathLike,
    candidates: Sequence[str],
    required: Sequence[str],
    *,
    dataset: str,
    layout: str,
) -> str:
    r"""The first candidate folder under ``root`` that holds every entry of
    ``required``.

    Args:
        root (str or os.PathLike): What the user passed.
        candidates (Sequence[str]): Sub-paths of ``root`` to search, in order
            (``""`` is ``root`` itself).
        required (Sequence[str]): Entries (folders end with ``/``, files do
            not) that must all exist in the chosen folder.
        dataset (str): Name for messages.
        layout (str): The expected tree, shown in the error.

    Raises:
        DatasetNotFoundError: Listing every path tried and what it lacked.
    """
    folder, _ = find_layout_variant(
        root, candidates, {"": required}, dataset=dataset, layout=layout
    )
    return folder


def find_layout_variant(
    root: str | os.PathLike,
    candidates: Sequence[str],
    variants: Mapping[str, Sequence[str]],
    *,
    dataset: str,
    layout: str,
) -> tuple[str, str]:
    r"""Like :func:`find_layout_root` for a dataset released in several
    layouts (MSMT17 V1/V2): returns the first ``(folder, variant)`` whose
    ``variants[variant]`` entries all exist, trying every variant at each
    candidate folder in turn."""
    base = check_root(root, dataset, layout)
    tried = []
    for sub in candidates:
        folder = os.path.normpath(os.path.join(base, sub)) if sub else base
        for label, required in variants.items():
            missing = []
            for entry in required:
                full = os.path.join(folder, entry.rstrip("/"))
                ok = os.path.isdir(full) if entry.endswith("/") else os.path.isfile(full)
                if not ok:
                    missing.append(entry)
            if not missing:
                return folder, label
            what = f" as {label}" if label else ""
            tried.append(f"  {folder}{what}  (missing: {', '.join(missing)})")
    raise DatasetNotFoundError(
        f"Could not find the {dataset} layout under '{base}'. Tried:\n"
        + "\n".join(tried)
        + _expected(layout)
    )


def list_images(folder: str, *, dataset: str, layout: str) -> list[str]:
    r"""Sorted names of the image files (by extension) directly in ``folder``.

    Other files (``Thumbs.db`` ships inside Market-1501's folders) are not
    images; they are counted in a log message, never parsed.
    """
    if not os.path.isdir(folder):
        raise DatasetNotFoundError(
            f"Folder '{folder}' of {dataset} does not exist" + _expected(layout)
        )
    names, other = [], []
    with os.scandir(folder) as it:
        for entry in it:
            if not entry.is_file():
                continue
            if entry.name.lower().endswith(IMAGE_EXTENSIONS):
                names.append(entry.name)
            else:
                other.append(entry.name)
    if other:
        logger.info(
            "%s: ignoring %d non-image file(s) in '%s': %s",
            dataset,
            len(other),
            folder,
            _listing(sorted(other)),
        )
    names.sort()
    return names


def parse_names(
    names: Sequence[str],
    pattern: str,
    *,
    where: str,
    dataset: str,
    layout: str,
    example: str,
) -> pd.DataFrame:
    r"""Matches every name against ``pattern`` (named groups), all or nothing.

    Returns a DataFrame with one string column per named group. Any name
    that does not match raises, listing the offending names, the folder and
    an example of a valid name.
    """
    series = pd.Series(list(names), dtype=object)
    fields = series.str.extract(pattern)
    bad = fields.isna().any(axis=1).to_numpy()
    if bad.any():
        raise DatasetLayoutError(
            f"{dataset}: {int(bad.sum())} file name(s) in '{where}' do not match the expected "
            f"pattern (e.g. '{example}'): {_listing(series[bad].tolist())}" + _expected(layout)
        )
    return fields


def read_id_list(path: str, *, dataset: str, layout: str) -> list[int]:
    r"""Identities from a comma-separated first line (SYSU-MM01 ``exp/*.txt``)."""
    if not os.path.isfile(path):
        raise DatasetNotFoundError(
            f"{dataset}: id list '{path}' does not exist" + _expected(layout)
        )
    with open(path, encoding="utf-8") as fh:
        first = fh.readline().strip()
    tokens = [t.strip() for t in first.split(",") if t.strip()]
    if not tokens:
        raise DatasetLayoutError(
            f"{dataset}: id list '{path}' is empty; expected comma-separated ids on its "
            "first line, e.g. '1,2,5'" + _expected(layout)
        )
    bad = [t for t in tokens if not t.isdigit()]
    if bad:
        raise DatasetLayoutError(
            f"{dataset}: id list '{path}' has non-integer ids {_listing(bad)}; expected "
            "comma-separated ids on its first line, e.g. '1,2,5'" + _expected(layout)
        )
    return [int(t) for t in tokens]


def read_path_label_list(path: str, *, dataset: str, layout: str) -> tuple[list[str], np.ndarray]:
    r"""``relpath label`` lines (MSMT17 ``list_*.txt``, RegDB ``idx/*.txt``).

    Blank lines are allowed; any other line that is not exactly two fields
    with an integer label raises, naming the file and line number.
    """
    if not os.path.isfile(path):
        raise DatasetNotFoundError(
            f"{dataset}: list file '{path}' does not exist" + _expected(layout)
        )
    paths: list[str] = []
    labels: list[int] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise DatasetLayoutError(
                    f"{dataset}: line {lineno} of '{path}' is {line.rstrip()!r}; expected "
                    "'<relative/path> <integer label>'" + _expected(layout)
                )
            paths.append(parts[0])
            labels.append(int(parts[1]))
    return paths, np.asarray(labels, dtype=np.int64)


def check_files_exist(paths: Iterable[str], *, listed_in: str, dataset: str, layout: str) -> None:
    r"""Raises if any listed image is missing (one ``stat`` per file)."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DatasetNotFoundError(
            f"{dataset}: {len(missing)} image(s) listed in '{listed_in}' do not exist: "
            f"{_listing(missing)}" + _expected(layout)
        )


def check_nonempty(n: int, what: str, where: str, *, dataset: str, layout: str) -> None:
    r"""Raises if a split has no images."""
    if n == 0:
        raise DatasetLayoutError(
            f"{dataset}: the {what} split is empty (looked in '{where}')" + _expected(layout)
        )


def verify_split_images(
    paths: Sequence[str], *, dataset: str, split: str, verbose: bool = True
) -> None:
    r"""Header check (:func:`~reidgraph.data.images.verify_image`) of every
    path; collects all failures and raises once, listing them."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    it: Iterable[str] = paths
    if verbose and tqdm is not None and len(paths) > 1000:
        it = tqdm(paths, desc=f"verify {dataset}/{split}", unit="img", leave=False)
    failures = []
    for p in it:
        try:
            verify_image(p)
        except ImageReadError as exc:
            failures.append(str(exc))
    if failures:
        raise ImageReadError(
            f"{dataset}: {len(failures)} unreadable image(s) in the {split} split "
            "(pass verify_images=False to skip this check at load time; reading them "
            "will still fail):\n  "
            + "\n  ".join(failures[:_MAX_LISTED])
            + (
                f"\n  ... and {len(failures) - _MAX_LISTED} more"
                if len(failures) > _MAX_LISTED
                else ""
            )
        )


def make_split(
    name: str,
    paths: Sequence[str],
    pids: np.ndarray,
    camids: np.ndarray,
    times: np.ndarray | None = None,
    frames: np.ndarray | None = None,
    modalities: np.ndarray | None = None,
) -> ReIDSplit:
    r"""Builds a :class:`ReIDSplit` from parallel columns (``None`` columns
    take the record defaults: ``time`` nan, ``frame`` -1, ``modality`` 0)."""
    n = len(paths)
    times = np.full(n, np.nan) if times is None else np.asarray(times, dtype=np.float64)
    frames = np.full(n, -1, np.int64) if frames is None else np.asarray(frames, dtype=np.int64)
    mods = np.zeros(n, np.int64) if modalities is None else np.asarray(modalities, dtype=np.int64)
    records = [
        ImageRecord(path=p, pid=pid, camid=c, time=t, frame=f, modality=m, split=name)
        for p, pid, c, t, f, m in zip(
            paths,
            np.asarray(pids).tolist(),
            np.asarray(camids).tolist(),
            times.tolist(),
            frames.tolist(),
            mods.tolist(),
            strict=True,
        )
    ]
    return ReIDSplit(records, name)


#: The three folders of the Market-1501 / DukeMTMC-reID layout, per split.
MARKET_STYLE_FOLDERS: dict[str, str] = {
    "train": "bounding_box_train",
    "query": "query",
    "gallery": "bounding_box_test",
}


def scan_market_style(
    base: str, pattern: str, *, dataset: str, layout: str, example: str
) -> dict[str, tuple[list[str], pd.DataFrame]]:
    r"""Lists and parses the ``bounding_box_train/``, ``query/`` and
    ``bounding_box_test/`` folders of ``base``.

    Returns, per split, the absolute paths and the parsed name fields (one
    string column per named group of ``pattern``). Raises on an empty folder
    or a name that does not match.
    """
    out = {}
    for split, sub in MARKET_STYLE_FOLDERS.items():
        folder = os.path.join(base, sub)
        names = list_images(folder, dataset=dataset, layout=layout)
        check_nonempty(len(names), split, folder, dataset=dataset, layout=layout)
        fields = parse_names(
            names, pattern, where=folder, dataset=dataset, layout=layout, example=example
        )
        out[split] = ([os.path.join(folder, n) for n in names], fields)
    return out
