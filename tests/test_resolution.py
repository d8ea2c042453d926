import math

import pytest

from pktchar.core.errors import ResolutionError
from pktchar.core.resolution import parse_resolution, parse_resolutions


@pytest.mark.parametrize(
    "text,hw",
    [
        ("224", (224, 224)),
        ("720p", (720, 1280)),
        ("1080p", (1080, 1920)),
        ("4k", (2160, 3840)),  # 3840x2160 UHD
        ("8K", (4320, 7680)),  # 7680x4320 UHD
        ("480x640", (480, 640)),  # HxW
        ("227", (227, 227)),
        ("x100", (43200, 76800)),  # 100x the pixels: 10x each side
    ],
)
def test_presets_and_forms(text, hw):
    r = parse_resolution(text)
    assert (r.height, r.width) == hw


def test_x10_keeps_aspect_and_pixels():
    r = parse_resolution("x10")
    # sqrt(10) * 4320 = 13661.2, sqrt(10) * 7680 = 24286.2
    assert (r.height, r.width) == (13661, 24286)
    assert abs(r.pixels / (10 * 7680 * 4320) - 1) < 1e-4
    assert math.isclose(r.width / r.height, 16 / 9, rel_tol=1e-4)


@pytest.mark.parametrize("bad", ["", "abc", "12ax3", "0", "0x5", "x0", "-5", "1080i"])
def test_malformed(bad):
    with pytest.raises(ResolutionError):
        parse_resolutions(bad) if bad == "" else parse_resolution(bad)


def test_list():
    assert [r.label for r in parse_resolutions("224,8k, x10")] == ["224", "8k", "x10"]
