r"""Reading re-ID images from disk with errors that name the file.

Every image a dataset lists is read through :func:`read_image`, which decodes
the *whole* file, so a corrupt or truncated image always raises
:class:`ImageReadError` at read time, whether or not the dataset loader
checked headers up front (``verify_images``). :func:`verify_image` is the
cheap check the loaders run at load time.
"""

from __future__ import annotations

import logging
import os

from PIL import Image, ImageFile, UnidentifiedImageError

__all__ = ["ImageReadError", "read_image", "verify_image", "IMAGE_EXTENSIONS"]

logger = logging.getLogger(__name__)

#: File-name endings treated as images by the dataset parsers (lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

# A JPEG ends with the end-of-image marker FF D9. Inside entropy-coded data a
# 0xFF byte is always followed by 0x00 or a restart marker (D0..D7), so a file
# cut anywhere in its scan data has no FF D9 near its end. The window allows
# for padding that some writers append after the marker.
_JPEG_EOI = b"\xff\xd9"
_JPEG_TAIL_WINDOW = 1024

_warned_truncated_flag = False


class ImageReadError(ValueError, OSError):
    r"""An image file that cannot be opened or decoded.

    Subclasses both :class:`ValueError` (bad input) and :class:`OSError`
    (what PIL raises), so either ``except`` clause catches it.
    """


def _fail(path: str, what: str, exc: BaseException | None) -> ImageReadError:
    why = f": {type(exc).__name__}: {exc}" if exc is not None else ""
    return ImageReadError(f"Image '{path}' {what}{why}")


def read_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    r"""Reads and fully decodes one image.

    The pixel data is decoded here (``Image.load``), not lazily, so a file
    truncated in its pixel data fails now, naming ``path``, instead of
    inside a data-loader worker later.

    Args:
        path (str or os.PathLike): The image file.
        mode (str, optional): PIL mode to convert to; ``None`` keeps the
            file's own mode. (default: :obj:`"RGB"`)

    Returns:
        :class:`PIL.Image.Image`: The decoded image (detached from the file).

    Raises:
        ImageReadError: If the file is missing, not an image, or corrupt or
            truncated.

    Example:
        >>> img = read_image("market/query/0001_c1s1_001051_00.jpg")  # doctest: +SKIP
        >>> img.size  # doctest: +SKIP
        (64, 128)
    """
    global _warned_truncated_flag
    path = os.fspath(path)
    if ImageFile.LOAD_TRUNCATED_IMAGES and not _warned_truncated_flag:
        # A process-wide PIL switch that pads truncated files with grey
        # instead of failing; we cannot override it safely per call.
        logger.warning(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process: truncated "
            "images are padded silently instead of raising"
        )
        _warned_truncated_flag = True
    try:
        with Image.open(path) as img:
            img.load()
            out = img.convert(mode) if mode is not None and img.mode != mode else img.copy()
    except FileNotFoundError as exc:
        raise _fail(path, "does not exist", exc) from exc
    except UnidentifiedImageError as exc:
        raise _fail(path, "is not a readable image", exc) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # PIL reports truncated/corrupt data as OSError, some plugins as
        # SyntaxError or ValueError.
        raise _fail(path, "is corrupt or truncated", exc) from exc
    return out


def verify_image(path: str | os.PathLike) -> None:
    r"""Cheap integrity check of one image file (header, not pixels).

    Runs PIL's ``Image.open`` + ``verify()`` (header parse; PNG also checks
    chunk CRCs) and, for JPEG, that the end-of-image marker ``FF D9`` lies in
    the last 1 KiB of the file, which catches files cut short (``verify``
    alone does not). Full decoding is left to :func:`read_image`.

    Cost: one ``open`` and a header read plus one 1 KiB tail read per file.

    Args:
        path (str or os.PathLike): The image file.

    Raises:
        ImageReadError: If the file is missing, not an image, or has a
            corrupt header or a truncated JPEG stream.

    Example:
        >>> verify_image("market/query/0001_c1s1_001051_00.jpg")  # doctest: +SKIP
    """
    path = os.fspath(path)
    try:
        # One open file for both checks: PIL leaves a caller's file open.
        with open(path, "rb") as fh:
            with Image.open(fh) as img:
                fmt = img.format
                img.verify()
            if fmt == "JPEG":
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - _JPEG_TAIL_WINDOW))
                tail = fh.read()
    except FileNotFoundError as exc:
        raise _fail(path, "does not exist", exc) from exc
    except UnidentifiedImageError as exc:
        raise _fail(path, "is not a readable image", exc) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise _fail(path, "has a corrupt or truncated header", exc) from exc
    if fmt == "JPEG" and _JPEG_EOI not in tail:
        raise _fail(
            path,
            f"is a truncated JPEG ({size} bytes, no end-of-image marker FF D9 in its last 1 KiB)",
            None,
        )
