"""One image reader for every data source: any file Pillow decodes -> uint8 RGB, or a refusal naming it.

:func:`read_image` is what the folder, CelebA and CelebA-HQ sources call.  It

* refuses, before decoding, any image of more than :data:`MAX_PIXELS` pixels
  and turns Pillow's decompression-bomb guard (``DecompressionBombWarning``
  above ``Image.MAX_IMAGE_PIXELS``, ``DecompressionBombError`` above twice that)
  into the same refusal, so a tiny file that claims 30000x30000 pixels never
  reaches the decoder or the face detector;
* applies the EXIF orientation;
* converts every pixel mode to 8-bit RGB by what the values mean, never by
  clipping them:

  - ``1``, ``L``, ``P``, ``RGB``, ``CMYK``, ``YCbCr``, ``RGBX``: Pillow's
    ``convert("RGB")`` (grey replicated, palette looked up);
  - 16-bit grey (``I;16*``: PNG, TIFF, PGM; ``I`` from PNG or PGM/PPM, which
    Pillow scales to 0..65535): ``round(v / 257)`` = ``round(v 255 / 65535)``,
    grey replicated.  Pillow's own ``convert`` clips at 255, which turned 89 %
    of a 16-bit photo's pixels white;
  - alpha (``RGBA``, ``LA``, ``PA``, ``La``, ``RGBa``, and ``P`` / ``L`` /
    ``RGB`` with a transparency key): composited onto white,
    ``round(c a / 255 + 255 (1 - a / 255))`` (the default background of
    scikit-image's ``rgba2rgb``);
  - 32-bit ``I`` from other formats (TIFF), ``F`` and any other mode: refused,
    their value range is unknown.

  16-bit RGB(A) PNGs are reduced to 8 bits by Pillow's decoder (high byte).

Every failure is a ``ValueError`` that starts with the file's name.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

#: Largest accepted image, in pixels (8192 x 8192 = 67 megapixels; below Pillow's
#: own warning level of ~89.5 megapixels).  Bounds the decode and the align step's
#: memory; downscale larger photographs before use.
MAX_PIXELS = 8192 * 8192

_SIXTEEN = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA = ("RGBA", "LA", "PA", "La", "RGBa")
_PLAIN = ("1", "L", "P", "RGB", "CMYK", "YCbCr", "RGBX")


def _sixteen_to_rgb(a: np.ndarray, name: str) -> np.ndarray:
    if a.size and (a.min() < 0 or a.max() > 65535):
        raise ValueError(f"{name}: integer pixels outside 0..65535; cannot convert to 8 bits")
    g = a.astype(np.uint32)
    g += 128
    g //= 257  # floor((v + 128) / 257) == round(v / 257): v / 257 never ends in .5
    return np.repeat(g.astype(np.uint8)[..., None], 3, axis=2)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    out, a = rgba[..., :3].astype(np.uint16), rgba[..., 3:].astype(np.uint16)
    out *= a  # c a + 255 (255 - a) + 127 <= 65152: uint16 holds it
    out += 255 * (255 - a) + 127
    out //= 255
    return out.astype(np.uint8)


def to_rgb_uint8(im, name: str = "image") -> np.ndarray:
    """A decoded PIL image -> uint8 ``(H, W, 3)`` by the rules of the module docstring."""
    mode = im.mode
    if mode in _SIXTEEN or (mode == "I" and im.format in ("PNG", "PPM")):
        return _sixteen_to_rgb(np.asarray(im), name)
    if mode in _ALPHA or (mode in ("P", "L", "RGB") and "transparency" in im.info):
        return _composite_on_white(np.asarray(im.convert("RGBA")))
    if mode not in _PLAIN:
        raise ValueError(f"{name}: unsupported pixel mode {mode!r} ({im.format}); "
                         f"save it as 8- or 16-bit RGB or greyscale")
    return np.asarray(im if mode == "RGB" else im.convert("RGB"))


def read_image(source, name: str | None = None, max_pixels: int | None = None) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` from a path or the file's bytes; ``ValueError`` naming ``name`` if not.

    ``name`` (default: the path) is what messages call the file; ``max_pixels``
    overrides :data:`MAX_PIXELS`.
    """
    from PIL import Image, ImageOps

    if isinstance(source, (bytes, bytearray, memoryview)):
        name, fp = name or "image", io.BytesIO(source)
    else:
        name, fp = name or str(source), Path(source)
    limit = MAX_PIXELS if max_pixels is None else int(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as im:
                w, h = im.size
                if w * h > limit:
                    raise Image.DecompressionBombError(f"{w}x{h} = {w * h} pixels, over the limit of "
                                                       f"{limit} (ganrestore.data.imageio.MAX_PIXELS)")
                im.load()
                ImageOps.exif_transpose(im, in_place=True)
                return np.ascontiguousarray(to_rgb_uint8(im, name))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(f"{name}: refused as a possible decompression bomb: {e}; downscale it "
                         f"below {limit} pixels") from None
    except MemoryError:
        raise
    except ValueError as e:
        if str(e).startswith(name):
            raise
        raise ValueError(f"{name}: cannot decode image ({e})") from None
    except Exception as e:  # Pillow raises OSError, SyntaxError, EOFError, zlib/struct errors...
        raise ValueError(f"{name}: cannot decode image ({type(e).__name__}: {e})") from None


__all__ = ["MAX_PIXELS", "read_image", "to_rgb_uint8"]
