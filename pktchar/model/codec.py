"""Payload coding: what a split's tensors weigh after quantisation and compression.

Three ways to size a coded payload, in increasing honesty:

1. **dtype** only: elements x bits, packed; int8/int4 add a per-tensor scale and
   zero point (4 + 4 bytes, :data:`QUANT_OVERHEAD`). This is ``Split.bytes`` of a profile
   at that dtype (``Split.tensor_bytes`` is the values alone).
2. **parametric ratio** (``compression=0.1``, the 10% assumption of the Yonsei paper's Table 1):
   coded = ceil(dtype bytes x ratio).
3. **measured coders** (``coder``: zstd, lz4 or sparse) run on *real* activations: a
   real forward pass at a reference resolution (default 224) over real images,
   every cut-set tensor quantised to the dtype and coded; the coded/raw ratio of
   each split is then applied to the exact sizes at the target resolution.

``sparse`` is a bitmap coding of exact zeros (ReLU outputs): one bit an element
plus the non-zero values at the dtype width.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.dtypes import QUANT_PARAM_BYTES, check_dtype, nbytes, payload_bytes
from ..core.errors import PktcharError, did_you_mean

if TYPE_CHECKING:
    import torch

    from .results import Split

QUANT_OVERHEAD = QUANT_PARAM_BYTES  # fp32 scale + int32 zero point per floating tensor (int8, int4)
CODERS = ("zstd", "lz4", "sparse")
ZSTD_LEVEL = 3
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")


def tensor_bytes(elements: int, dtype: str, native_bits: int | None = None) -> int:
    """Bytes of one tensor sent at ``dtype``: packed values plus the quantisation parameters
    (the same function that sizes ``CutTensor.bytes`` in a profile)."""
    return payload_bytes(elements, dtype, native_bits)


@dataclass(frozen=True)
class Measured:
    """Coded/raw ratios of one coder, measured on real activations at a reference resolution."""

    coder: str
    dtype: str
    measure_res: str
    weights: str
    images: str
    n_images: int
    ratios: dict[str, float]  # split name -> mean coded/raw over the images
    overall: float  # coded/raw over every tensor of every split
    seconds: float = 0.0

    def ratio(self, split: str) -> float:
        return self.ratios.get(split, self.overall)

    def describe(self) -> str:
        return (
            f"{self.coder} on {self.dtype} activations measured at {self.measure_res} on {self.n_images} "
            f"image(s) from {self.images}, weights: {self.weights}"
        )


@dataclass(frozen=True)
class Coding:
    """How a payload is coded: dtype, then a parametric ratio or a measured coder (not both)."""

    dtype: str = "fp32"
    compression: float | None = None
    measured: Measured | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", check_dtype(self.dtype))
        if self.compression is not None and not (0 < self.compression <= 1):
            raise PktcharError(f"`compression` is coded/raw and must be in (0, 1], got {self.compression}")
        if self.compression is not None and self.measured is not None:
            raise PktcharError("use either `compression` (a ratio) or `coder` (measured), not both")

    def describe(self) -> str:
        if self.measured is not None:
            return self.measured.describe()
        if self.compression is not None:
            return f"{self.dtype}, compressed to {self.compression:g} of its size (parametric ratio)"
        return f"{self.dtype}, uncompressed"

    def split_bytes(self, split: Split) -> int:
        """Coded bytes of a split's cut set: floating tensors at this coding's dtype (quantisation
        parameters included once), others as they are. Uncompressed, at the dtype the split was
        profiled at, this is ``split.bytes``."""
        raw = sum(tensor_bytes(t.elements, self.dtype) if t.floating else t.bytes for t in split.tensors)
        if self.measured is not None:
            return math.ceil(raw * self.measured.ratio(split.after))
        if self.compression is not None:
            return math.ceil(raw * self.compression)
        return raw


# ----------------------------------------------------------------------------------------------
# Coders on real tensors


def quantize(t: torch.Tensor, dtype: str) -> bytes:
    """The tensor as it is sent at ``dtype``: int8/int4 (per-tensor affine) start with the scale
    (fp32) and zero point (int32), little-endian, then the values; the floating dtypes are the values.
    ``len(quantize(t, dtype)) == tensor_bytes(t.numel(), dtype)``."""
    import struct

    import numpy as np
    import torch

    x = t.detach().to("cpu", torch.float32).contiguous()
    if dtype == "fp32":
        return x.numpy().tobytes()
    if dtype == "fp16":
        return x.half().numpy().tobytes()
    if dtype == "bf16":
        return x.bfloat16().view(torch.int16).numpy().tobytes()
    levels = 255 if dtype == "int8" else 15
    lo, hi = float(x.min()) if x.numel() else 0.0, float(x.max()) if x.numel() else 0.0
    lo, hi = min(lo, 0.0), max(hi, 0.0)  # zero stays exact (ReLU zeros)
    scale = (hi - lo) / levels or 1.0
    zp = round(-lo / scale)
    q = torch.clamp(torch.round(x / scale) + zp, 0, levels).to(torch.uint8).numpy().ravel()
    params = struct.pack("<fi", scale, zp)
    if dtype == "int8":
        return params + q.tobytes()
    if q.size % 2:
        q = np.append(q, np.uint8(0))
    return params + ((q[0::2] << 4) | q[1::2]).astype(np.uint8).tobytes()


def encode(t: torch.Tensor, dtype: str, coder: str) -> bytes:
    """The bytes ``coder`` makes of ``t`` quantised to ``dtype`` (what a replay sends).

    ``sparse`` is a bitmap of the non-zeros (one bit an element) followed by the non-zero values
    (int8/int4: with their quantisation parameters)."""
    if coder == "sparse":
        import numpy as np

        flat = t.detach().flatten().cpu()
        mask = flat != 0
        return np.packbits(mask.numpy()).tobytes() + quantize(flat[mask], dtype)
    data = quantize(t, dtype)
    if coder == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data)
    if coder == "lz4":
        import lz4.frame

        return lz4.frame.compress(data)
    if coder == "none":
        return data
    raise PktcharError(
        f"unknown coder {coder!r}: choose one of {', '.join(CODERS)}.{did_you_mean(coder, CODERS)}"
    )


def coded_size(t: torch.Tensor, dtype: str, coder: str) -> int:
    """``len(encode(t, dtype, coder))``: bytes of ``t`` at ``dtype`` after ``coder`` (quantisation
    parameters included, as :func:`quantize` writes them)."""
    if coder == "sparse":  # without building the bytes
        nnz = int((t != 0).sum())
        return nbytes(t.numel(), 1) + tensor_bytes(nnz, dtype)
    return len(encode(t, dtype, coder))


def check_coder(name: str) -> str:
    key = name.strip().lower()
    if key not in CODERS:
        raise PktcharError(
            f"unknown coder {name!r}: choose one of {', '.join(CODERS)}.{did_you_mean(name, CODERS)}"
        )
    return key


# ----------------------------------------------------------------------------------------------
# Images


def default_images() -> list[Path]:
    """The photographs matplotlib ships (grace_hopper.jpg, Minduka_Present_Blue_Pack.png)."""
    import matplotlib

    base = Path(matplotlib.get_data_path()) / "sample_data"
    found = [base / "grace_hopper.jpg", base / "Minduka_Present_Blue_Pack.png"]
    return [p for p in found if p.is_file()]


def load_images(folder: str | Path | None, size: tuple[int, int], limit: int = 8) -> tuple[Any, str]:
    """Up to ``limit`` images as a normalised float batch (N, 3, H, W), and a description of them.

    With no folder, the default photographs are used, each as the whole picture and its
    four corner crops (deterministic views), resized to ``size``.
    """
    import numpy as np
    import torch
    from PIL import Image

    if folder is None:
        paths = default_images()
        if not paths:
            raise PktcharError(
                "no default images found (matplotlib's sample data); give a folder of them (`images`)"
            )
        desc = "matplotlib sample photos (" + ", ".join(p.name for p in paths) + ", whole and corner crops)"
        views = []
        for p in paths:
            img = Image.open(p).convert("RGB")
            w, h = img.size
            cw, ch = int(w * 0.7), int(h * 0.7)
            views.append(img)
            views += [
                img.crop((x, y, x + cw, y + ch))
                for x, y in ((0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch))
            ]
    else:
        d = Path(folder)
        if not d.is_dir():
            raise PktcharError(f"`images` {str(d)!r} is not a folder")
        paths = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not paths:
            raise PktcharError(f"`images` {str(d)!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        views = []
        for p in paths[:limit]:
            try:
                views.append(Image.open(p).convert("RGB"))
            except Exception as e:
                raise PktcharError(f"cannot read image {p}: {e}") from e
        desc = f"{d} ({len(views)} of {len(paths)} images)"
    views = views[:limit]
    h, w = size
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    arrs = [
        ((np.asarray(v.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0) - mean) / std for v in views
    ]
    batch = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()
    return batch, desc


# ----------------------------------------------------------------------------------------------
# Measurement

RANDOM_WEIGHTS = "random initialisation (torch.manual_seed(0))"


def real_model_and_images(
    model: str,
    measure_res: str,
    *,
    weights: str | None = None,
    images: str | Path | None = None,
    num_classes: int | None = None,
    limit: int = 8,
) -> tuple[Any, Any, Any, str, str]:
    """A real CPU model (seed 0, or ``weights``) and an image batch at ``measure_res``:
    (model, batch, resolution, images description, weights description)."""
    import torch

    from ..core.resolution import parse_resolution
    from . import zoo

    res = parse_resolution(measure_res)
    spec = zoo.resolve(model)
    torch.manual_seed(0)
    net = zoo.build(spec, device="cpu", num_classes=num_classes)
    if weights:
        zoo.load_weights(net, weights)
    batch, desc = load_images(images, (res.height, res.width), limit)
    return net, batch, res, desc, str(weights) if weights else RANDOM_WEIGHTS


def measure(
    model: str,
    coder: str,
    *,
    dtype: str = "fp32",
    measure_res: str = "224",
    weights: str | None = None,
    images: str | Path | None = None,
    num_classes: int | None = None,
    limit: int = 8,
    progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
) -> Measured:
    """Run ``model`` for real at ``measure_res`` and measure ``coder``'s ratio at every split."""
    import time

    import torch

    from .trace import cut_sets, trace_values

    coder = check_coder(coder)
    dtype = check_dtype(dtype)
    net, batch, res, desc, weights_desc = real_model_and_images(
        model, measure_res, weights=weights, images=images, num_classes=num_classes, limit=limit
    )
    t0 = time.perf_counter()
    sums: dict[str, list[float]] = {}
    coded_all = raw_all = 0
    items = range(batch.shape[0])
    for i in progress(items) if progress else items:
        coded: dict[int, int] = {}

        def on_value(vid: int, t: torch.Tensor) -> None:
            if t.is_floating_point():
                coded[vid] = coded_size(t, dtype, coder)  # noqa: B023 - consumed inside this iteration

        with torch.no_grad():
            tracer = trace_values(net, batch[i : i + 1], on_value)
        for name, vids in cut_sets(tracer):
            c = sum(coded.get(v, 0) for v in vids)
            r = sum(tensor_bytes(tracer.values[v].elements, dtype) for v in vids if v in coded)
            if r:
                sums.setdefault(name, []).append(c / r)
                coded_all += c
                raw_all += r
    ratios = {k: sum(v) / len(v) for k, v in sums.items()}
    return Measured(
        coder=coder,
        dtype=dtype,
        measure_res=res.label,
        weights=weights_desc,
        images=desc,
        n_images=int(batch.shape[0]),
        ratios=ratios,
        overall=coded_all / raw_all if raw_all else 1.0,
        seconds=time.perf_counter() - t0,
    )
