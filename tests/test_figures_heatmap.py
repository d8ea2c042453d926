"""The packet-table heat map: a cell's colour, read back from the rendered pixels and looked up on the
rendered colour bar, gives log10 of that cell's bytes (both panels share the one bar)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from pktchar.model.table import packet_table
from pktchar.present import figures


def _bar_lookup(fig, px: np.ndarray):
    """A function from an RGB colour to the colour-bar value whose pixel row has that colour, and the
    value one pixel row of the bar spans."""
    bar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    box = bar.get_window_extent()
    height = px.shape[0]
    x = int(round((box.x0 + box.x1) / 2))
    ys = np.arange(math.ceil(box.y0) + 1, math.floor(box.y1) - 1)  # display rows inside the bar's frame
    colours = px[height - 1 - ys, x]  # the buffer's first row is the top of the figure
    values = bar.transData.inverted().transform(np.column_stack([np.full(len(ys), x), ys + 0.5]))[:, 1]
    per_pixel = abs(values[-1] - values[0]) / (len(ys) - 1)

    def lookup(rgb: np.ndarray) -> tuple[float, float]:
        dist = np.abs(colours - rgb).sum(axis=1)
        k = int(np.argmin(dist))
        return float(values[k]), float(dist[k])

    return lookup, per_pixel


def test_heatmap_colours_read_back_on_the_one_colour_bar():
    t = packet_table(["alexnet", "resnet18"], ["224", "8k"])
    # the smallest payloads are alexnet's 1000 fp32 logits (4 kB) and resnet18's 512 pooled fp32 features
    # (2 kB); the largest is resnet18's conv1 output at 8k, 64 channels x 2160 x 3840 (stride 2) x 4 B:
    # 10^3.3 to 10^9.3 on one bar
    assert t.cell("alexnet", "224").min_bytes == 1000 * 4
    assert t.cell("resnet18", "8k").min_bytes == 512 * 4
    assert t.cell("resnet18", "8k").max_bytes == 64 * 2160 * 3840 * 4
    fig = figures.packet_table_heatmap(t)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    px = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    lookup, per_pixel = _bar_lookup(fig, px)
    # a colour the bar shows over a run of rows; viridis has 256 levels, so a colour stands for up to one
    # level's span of values as well as one pixel's: either rounding may move the value read back
    levels = [ax for ax in fig.axes if ax.images]
    assert len(levels) == 2
    span = levels[0].images[0].norm.vmax - levels[0].images[0].norm.vmin
    tolerance = 1.5 * max(per_pixel, span / 256)
    height = px.shape[0]
    checked = 0
    for ax, which in zip(levels, ("min", "max"), strict=True):
        for i, res in enumerate(t.resolutions):
            for j, model in enumerate(t.models):
                # a spot near the cell's corner, away from its centred two-line annotation
                x, y = ax.transData.transform((j - 0.38, i - 0.38))
                rgb = px[height - 1 - int(y), int(x)]
                value, dist = lookup(rgb)
                assert dist <= 6, f"{which} {model}@{res}: colour {rgb} is not on the colour bar"
                want = math.log10(getattr(t.cell(model, res), f"{which}_bytes"))
                assert abs(value - want) <= tolerance, (which, model, res, value, want, tolerance)
                checked += 1
    assert checked == 8
