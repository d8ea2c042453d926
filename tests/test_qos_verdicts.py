"""QoS verdicts against figures worked out by hand and rows of the 3GPP tables.

Sources: TS 23.501 Table 5.7.4-1 (5QIs), TS 22.261 Table 7.10.1-1 (split AI/ML inference KPIs) and
Table 7.10.1-2 (AI/ML model download KPIs), ITU-R M.2410-0 (IMT-2020 peak and user experienced rates).
"""

from __future__ import annotations

import json

import pytest

from pktchar.core.errors import PktcharError
from pktchar.core.qos import DEFAULT_RELIABILITY, requirements
from pktchar.core.radio import RADIOS, carrier
from pktchar.core.units import human_duration, human_factor, human_number, human_per
from pktchar.present.render import Column, cell_exact, cell_human, plain

from conftest import run_cli


def _fit(r, qi):
    return next(f for f in r.fits if f.fiveqi.qi == qi)


# ---- 3GPP's own rows: rate = payload x 8 / latency (TS 22.261 clause 7.10) ---------------------


@pytest.mark.parametrize(
    "payload,latency,rate",
    [
        # TS 22.261 Table 7.10.1-1, split AI/ML image recognition, uplink: 0.27 MByte within 15 ms
        # -> 270,000 x 8 / 0.015 = 144,000,000 bit/s, the table's 144 Mbit/s.
        (270_000, 0.015, 144e6),
        # TS 22.261 Table 7.10.1-2, AI/ML model distribution for image recognition: 138 MByte within 1 s
        # -> 138e6 x 8 / 1 = 1.104 Gbit/s, the table's "1.1 Gbit/s".
        (138_000_000, 1.0, 1.104e9),
        # TS 22.261 Table 7.10.1-2, AI/ML model distribution for speech recognition: 80 MByte within 1 s
        # -> 80e6 x 8 / 1 = 640 Mbit/s, the table's 640 Mbit/s.
        (80_000_000, 1.0, 640e6),
    ],
)
def test_ts22261_kpi_rows_rate_from_payload_and_latency(payload, latency, rate):
    assert requirements(payload, latency=latency).rate_payload == pytest.approx(rate)


def test_model_download_row_rounds_to_the_table():
    # 1.104 Gbit/s is printed "1.1 Gbit/s" in TS 22.261 Table 7.10.1-2: two significant digits.
    assert f"{requirements(138_000_000, latency=1.0).rate_payload / 1e9:.2g}" == "1.1"


# ---- Radio profiles ---------------------------------------------------------------------------


def test_radio_presets_from_their_sources():
    # ITU-R M.2410-0 4.1: peak data rate DL 20 Gbit/s, UL 10 Gbit/s.
    assert (RADIOS["imt2020-peak"].downlink, RADIOS["imt2020-peak"].uplink) == (20e9, 10e9)
    # ITU-R M.2410-0 4.3: user experienced data rate DL 100 Mbit/s, UL 50 Mbit/s.
    assert (RADIOS["imt2020-user"].downlink, RADIOS["imt2020-user"].uplink) == (100e6, 50e6)
    assert carrier("imt2020-user", direction="dl").rate == 100e6
    assert carrier("imt2020-user", direction="uplink").rate == 50e6
    assert all(r.source for r in RADIOS.values())


def test_carrier_factor_by_hand():
    # 100,000 B + 24 B frame header = 100,024 B over MSS 1448: 69 full segments + 112 B -> 70 packets,
    # each with 20 B IPv4 + 20 B TCP + 12 B timestamp option = 52 B of headers:
    # IP bytes 100,024 + 70 x 52 = 103,664 B; at 30 fps: 103,664 x 8 x 30 = 24,879,360 bit/s.
    r = requirements(100_000, fps=30, carrier=carrier("imt2020-user"))
    assert r.packets.ip_bytes == 103_664
    assert r.needed("ip") == pytest.approx(24_879_360)
    assert r.carrier_factor == pytest.approx(50e6 / 24_879_360)  # room x2.03
    assert r.carried is True
    assert _fit(r, 80).fits  # PDB 10 <= 33.3 ms, PER 1e-6 <= 1e-3, rate carried


# ---- A fit that means something: PDB, PER, MDBV and rate ---------------------------------------


def test_5qi80_does_not_carry_68_tbits():
    # VGG-16 at x100, first conv at 10% compression: 84.9 GB within 10 ms = 84.9e9 x 8 / 0.01
    # = 67.92 Tbit/s; the IMT-2020 peak uplink is 10 Gbit/s (ITU-R M.2410-0 4.1).
    r = requirements(84_900_000_000, latency=0.010, carrier=carrier("imt2020-peak"))
    assert r.rate_payload == pytest.approx(67.92e12)
    f = _fit(r, 80)
    assert not f.fits and f.failing == ("rate",)  # PDB 10 ms and PER 1e-6 are fine: only the rate fails
    assert r.fitting == []
    ns = r.non_standardized()
    assert ns["resource"] == "DC-GBR" and ns["pdb_ms"] == pytest.approx(10) and ns["per"] == 1e-3
    assert ns["mdbv"] == r.packets.ip_bytes  # one frame within a 10 ms PDB


def test_flow_that_does_not_fit_the_link_fits_no_5qi():
    # 5.975 MB within 10 ms = 4.78 Gbit/s of payload on a 1 Gbit/s Ethernet link.
    r = requirements(5_975_000, latency=0.010, link=1e9)
    assert r.rate_payload == pytest.approx(4.78e9)
    assert r.fits_link is False
    assert r.fitting == [] and _fit(r, 80).failing == ("rate",)
    assert r.carrier_factor == pytest.approx(1e9 / r.rate_wire)  # the link compares wire bytes


def test_voice_classes_do_not_fit_a_tensor_stream():
    # 5,587,500 B at 10 fps = 447 Mbit/s within a 100 ms budget. Voice and push-to-talk 5QIs 1, 65, 66
    # allow PER 1e-2, above the 1e-3 the flow tolerates (default reliability 99.9 %, TS 22.261
    # Table 7.10.1-1); 67 (PER 1e-3, PDB 100 ms) fails only on the rate the IMT-2020 user
    # experienced uplink carries (50 Mbit/s, ITU-R M.2410-0 4.3).
    r = requirements(5_587_500, fps=10, carrier=carrier("imt2020-user"))
    assert r.rate_payload == pytest.approx(447e6)
    for qi in (1, 65, 66):
        assert _fit(r, qi).failing == ("PER", "rate")
    assert _fit(r, 67).failing == ("rate",)
    assert r.fitting == []
    assert r.resource == "GBR"  # a 100 ms budget is above every delay-critical GBR PDB (30 ms at most)


def test_per_from_reliability():
    assert DEFAULT_RELIABILITY == 0.999
    # 99.999 % -> PER 1e-5: 84 (1e-5) fits on PER, 83 (1e-4) does not; 1 kB at 100 fps (10 ms).
    r = requirements(1000, fps=100, reliability=0.99999)
    assert r.per == 1e-5
    assert "PER" in _fit(r, 83).failing
    assert "PER" not in _fit(r, 84).failing and "PER" not in _fit(r, 80).failing


def test_mdbv_and_pdb_failures_named_together():
    # 2,000 B within 5 ms: 5QI 85 (5 ms, PER 1e-5, MDBV 255 B) fails on MDBV only with PER 1e-5 allowed;
    # 5QI 1 (100 ms) fails on PDB and PER (1e-2 above 1e-5).
    r = requirements(2000, latency=0.005, reliability=0.99999)
    assert _fit(r, 85).failing == ("MDBV",)
    assert _fit(r, 1).failing == ("PDB", "PER")
    assert r.burst == r.packets.ip_bytes  # one frame within the budget


# ---- Bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", [0.0, 1.0, 1.5, -0.1])
def test_reliability_outside_0_1(rel):
    with pytest.raises(PktcharError, match="reliability"):
        requirements(1000, latency=0.01, reliability=rel)


def test_unknown_radio_lists_the_presets():
    with pytest.raises(PktcharError, match="imt2020-peak") as e:
        carrier("imt2030")
    assert "Known:" in str(e.value)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["qos", "--payload", "1kB", "--latency", "10ms", "--radio", "lte"], "unknown radio profile"),
        (["qos", "--payload", "1kB", "--latency", "10ms", "--reliability", "1.2"], "reliability"),
        (["qos", "--payload", "1kB", "--latency", "10ms", "--reliability", "0"], "reliability"),
        (
            ["qos", "--payload", "1kB", "--latency", "10ms", "--radio", "imt2020-user", "--link", "1gbit"],
            "not both",
        ),
        (
            ["qos", "--payload", "1kB", "--latency", "10ms", "--radio", "crowd", "--direction", "up"],
            "direction",
        ),
    ],
)
def test_bad_qos_input_is_one_line(args, needle):
    r = run_cli(*args)
    assert r.returncode != 0
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len([x for x in r.stderr.splitlines() if x.strip()]) == 1


# ---- Output: characteristics as JSON numbers, rates in every table format, no exponents --------


def test_qos_json_carries_the_characteristics_as_numbers():
    r = run_cli(
        "qos", "--payload", "270kB", "--latency", "15ms", "--radio", "indoor-hotspot", "--format", "json"
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    ch = d["characteristics"]
    assert (
        ch["pdb_ms"] == pytest.approx(15)
        and ch["per"] == 1e-3
        and ch["rate_payload_bps"] == pytest.approx(144e6)
    )
    assert isinstance(ch["burst_bytes"], int) and ch["resource"] == "DC-GBR"
    # TS 22.261 Table 7.1-1 indoor hotspot uplink 500 Mbit/s carries it
    assert d["carrier"]["rate_bps"] == 500e6 and d["carrier"]["carries"] is True
    assert d["fitting_5qi"] == [80]


def test_qos_terminal_names_failing_characteristics_and_services():
    r = run_cli("qos", "--payload", "5.5875MB", "--fps", "10", "--radio", "imt2020-user", "--format", "md")
    assert r.returncode == 0, r.stderr
    assert "conversational voice" in r.stdout and "PER, rate" in r.stdout
    assert "a non-standardized 5QI would need" in r.stdout
    assert "e+" not in r.stdout and "e-0" not in r.stdout


@pytest.mark.parametrize("fmt", ["md", "tex", "csv", "json"])
def test_table_rates_in_every_format(fmt):
    r = run_cli(
        "table", "--models", "vgg16", "--res", "224", "--latency", "10ms", "--radio", "imt2020-peak",
        "--format", fmt,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    # VGG-16 at 224, fp32: the largest split is features.0's 64x224x224x4 B = 12,845,056 B;
    # within 10 ms: 12,845,056 x 8 / 0.01 = 10,276,044,800 bit/s, above the 10 Gbit/s peak uplink.
    if fmt == "json":
        c = json.loads(r.stdout)["cells"][0]
        assert c["max_rate_bps"] == pytest.approx(10_276_044_800)
        assert c["max_carried"] is False and c["min_carried"] is True
    elif fmt == "csv":
        assert "10276044800" in r.stdout and "max_rate_bps" in r.stdout
    else:
        assert "10.3 Gbit/s" in r.stdout and "NO" in r.stdout
    assert "e+" not in r.stdout


def test_formatting_helpers_have_no_exponents():
    assert human_duration(1 / 30) == "33.3 ms" and human_duration(8.55e-5) == "85.5 us"
    assert human_per(1e-6) == "10^-6" and human_per(2.5e-4) == "2.5 x 10^-4"
    assert human_number(1_358_240.4) == "1,358,240" and human_number(0.000123) == "0.000123"
    assert human_factor(0.25) == "short by x4" and human_factor(2.5) == "room x2.5"
    assert plain(2.09992e6) == "2099920" and plain(7.648e7) == "76480000" and plain(1.5e-7) == "0.00000015"
    col = Column("x", "x", "float")
    assert cell_human(col, 7.648e7) == "76,480,000" and cell_exact(col, 2.09992e6) == "2099920"


# ---- Models as they really are; small things ----------------------------------------------------


def test_native_resolutions_from_the_weights_transforms():
    from pktchar.model.zoo import registry

    reg = registry()
    # torchvision's weights tables: EfficientNet-B1 IMAGENET1K_V2 crop 240, B7 600, V2-S 384, V2-L 480,
    # Inception v3 299; ViT-H/14 built without weights takes 224.
    assert [reg[f"efficientnet_b{i}"].default_res for i in range(8)] == [
        224,
        240,
        288,
        300,
        380,
        456,
        528,
        600,
    ]
    assert reg["efficientnet_v2_s"].default_res == 384 and reg["efficientnet_v2_l"].default_res == 480
    assert reg["inception_v3"].default_res == 299 and reg["vit_h_14"].default_res == 224
    assert reg["resnet50"].description.startswith("ResNet (He et al., 2016)")


def test_models_json_and_default_res():
    r = run_cli("models", "efficientnet_b7", "--format", "json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    assert row["default_res"] == 600 and "EfficientNet" in row["description"]


def test_split_without_close_name_lists_split_points():
    r = run_cli("profile", "vgg16", "--split", "nope", "--fps", "30")
    assert r.returncode != 0 and "Split points are named after layers (input, features.0" in r.stderr


def test_link_without_split_warns():
    r = run_cli("profile", "alexnet", "--only", "splits", "--link", "1gbit", "--format", "json")
    assert r.returncode == 0 and "warning" in r.stderr and "--split" in r.stderr


def test_report_tex_command_keeps_double_dashes():
    from pktchar.present.report import _tex_value

    assert (
        _tex_value("command", "pktchar report vgg16 --res 224")
        == r"\texttt{pktchar report vgg16 -{}-{}res 224}"
    )


def test_commands_check_the_rate_against_the_imt2020_peak_by_default():
    # 84.9 GB within 10 ms = 67.92 Tbit/s, far above the 10 Gbit/s IMT-2020 peak uplink (ITU-R M.2410-0
    # 4.1): no 5QI fits unless the rate check is turned off (--radio none), when 80 fits on PDB and PER.
    d = json.loads(run_cli("qos", "--payload", "84.9GB", "--latency", "10ms", "--format", "json").stdout)
    assert d["fitting_5qi"] == [] and d["carrier"]["rate_bps"] == 10e9
    assert d["non_standardized_5qi"]["resource"] == "DC-GBR"
    r = run_cli("qos", "--payload", "84.9GB", "--latency", "10ms", "--radio", "none", "--format", "json")
    assert json.loads(r.stdout)["fitting_5qi"] == [80]


def test_the_library_names_fields_and_the_command_names_its_flags():
    # the core layer says `radio` and `link`; a Python caller reads the field names, the command its flags
    with pytest.raises(PktcharError) as e:
        carrier("crowd", 1e9)
    assert str(e.value) == "give radio or link, not both"
    r = run_cli("qos", "--payload", "1kB", "--latency", "10ms", "--radio", "crowd", "--link", "1gbit")
    assert r.stderr.strip() == "pktchar: error: give --radio or --link, not both"
    with pytest.raises(PktcharError) as e:
        requirements(1000)
    assert str(e.value) == "give a latency budget (latency) or a frame rate (fps)"
    # what lands in JSON and reports names no flag: the link's rate as given, the reliability as given
    assert carrier(link=100e6).source == "the link rate given, 100 Mbit/s"
    r1 = requirements(1000, latency=0.01, reliability=0.99999)
    assert r1.reliability_source == "the reliability given" and r1.per == 1e-5
    default = carrier(None, None, "ul", "imt2020-peak")
    assert default.source.endswith("; the default when no radio or link is given")
