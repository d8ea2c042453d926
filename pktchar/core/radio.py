"""What a radio or a link can carry: named radio profiles with their sources, and a link rate (``link``).

A flow is carried when the rate it needs within its latency budget (and on average at its frame rate)
is at most the carrier's rate. A radio profile is a per-user data rate the 5G system is required to
give (user plane, so it is compared with the flow's IP rate); a ``link`` is an Ethernet link (its
rate is compared with the flow's wire rate, Ethernet framing, preamble and gap included).

Sources (cited where each figure enters below):

- ITU-R M.2410-0 (11/2017), "Minimum requirements related to technical performance for IMT-2020
  radio interface(s)": clause 4.1 peak data rate (DL 20 Gbit/s, UL 10 Gbit/s) and clause 4.3
  user experienced data rate, dense-urban eMBB test environment (DL 100 Mbit/s, UL 50 Mbit/s).
- 3GPP TS 22.261, Table 7.1-1 "Performance requirements for high data rate and traffic density
  scenarios": experienced data rate per user, downlink and uplink apart, per scenario.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PktcharError, did_you_mean

M = 10**6
G = 10**9
M2410 = "ITU-R M.2410-0 (IMT-2020 minimum technical performance)"
T71 = "3GPP TS 22.261 Table 7.1-1"


@dataclass(frozen=True)
class Radio:
    name: str
    downlink: float  # bit/s
    uplink: float  # bit/s
    source: str
    what: str

    def rate(self, direction: str) -> float:
        return self.uplink if direction == "ul" else self.downlink


# name -> Radio. Each figure with its source, table and row.
RADIOS: dict[str, Radio] = {
    r.name: r
    for r in (
        # ITU-R M.2410-0 clause 4.1: peak data rate, DL 20 Gbit/s, UL 10 Gbit/s (eMBB).
        Radio("imt2020-peak", 20 * G, 10 * G, f"{M2410}, 4.1 peak data rate", "IMT-2020 peak data rate"),
        # ITU-R M.2410-0 clause 4.3: user experienced data rate (5th percentile of the user throughput),
        # dense urban eMBB: DL 100 Mbit/s, UL 50 Mbit/s.
        Radio(
            "imt2020-user",
            100 * M,
            50 * M,
            f"{M2410}, 4.3 user experienced data rate (dense urban)",
            "IMT-2020 user experienced data rate",
        ),
        # 3GPP TS 22.261 Table 7.1-1, experienced data rate (DL / UL) per scenario, rows 1-5, 7-9.
        Radio("urban-macro", 50 * M, 25 * M, f"{T71}, row 1 urban macro", "urban macro"),
        Radio("rural-macro", 50 * M, 25 * M, f"{T71}, row 2 rural macro", "rural macro"),
        Radio("indoor-hotspot", 1 * G, 500 * M, f"{T71}, row 3 indoor hotspot", "indoor hotspot"),
        Radio("crowd", 25 * M, 50 * M, f"{T71}, row 4 broadband access in a crowd", "broadband in a crowd"),
        Radio("dense-urban", 300 * M, 50 * M, f"{T71}, row 5 dense urban", "dense urban"),
        Radio("high-speed-train", 50 * M, 25 * M, f"{T71}, row 7 high-speed train", "high-speed train"),
        Radio("high-speed-vehicle", 50 * M, 25 * M, f"{T71}, row 8 high-speed vehicle", "high-speed vehicle"),
        Radio("airplane", 15 * M, 7_500_000, f"{T71}, row 9 airplanes connectivity", "airplanes"),
    )
}

DIRECTIONS = {"ul": "uplink", "dl": "downlink"}


@dataclass(frozen=True)
class Carrier:
    """A rate a flow must fit in: a radio profile in one direction, or an Ethernet link."""

    name: str
    rate: float  # bit/s
    source: str
    layer: str  # "ip": compared with the flow's IP rate (radio user plane); "wire": Ethernet wire rate

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "rate_bps": self.rate, "source": self.source, "compares": self.layer}


def radio(name: str) -> Radio:
    """The radio profile ``name``; an unknown name fails with the list."""
    key = name.strip().lower()
    if key not in RADIOS:
        raise PktcharError(
            f"unknown radio profile {name!r}.{did_you_mean(key, RADIOS)} Known: {', '.join(RADIOS)}"
        )
    return RADIOS[key]


# What a command checks a flow's rate against when it names neither a radio nor a link: the IMT-2020
# peak data rate, the most any IMT-2020 radio must give one user (ITU-R M.2410-0 4.1). A flow above it
# fits no 5QI on any compliant 5G radio; one below it may still exceed a real cell (name a radio).
DEFAULT_RADIO = "imt2020-peak"


def carrier(
    radio_name: str | None = None,
    link: float | None = None,
    direction: str = "ul",
    default: str | None = None,
) -> Carrier | None:
    """The carrier a command names: the radio profile ``radio_name`` (in ``direction``), or an Ethernet
    ``link`` (bit/s); with neither, the ``default`` profile (commands pass :data:`DEFAULT_RADIO`);
    ``radio_name="none"``: no check."""
    if radio_name and radio_name.strip().lower() == "none":
        return None
    if radio_name and link:
        raise PktcharError("give `radio` or `link`, not both")
    if link is not None:
        if link <= 0:
            raise PktcharError(f"`link` must be positive, got {link} bit/s")
        from .units import human_rate

        return Carrier("the link", float(link), f"the link rate given, {human_rate(link)}", "wire")
    radio_name = radio_name or default
    if not radio_name:
        return None
    d = direction.strip().lower()
    d = {"uplink": "ul", "downlink": "dl"}.get(d, d)
    if d not in DIRECTIONS:
        raise PktcharError(f"unknown direction {direction!r}: use ul (uplink) or dl (downlink)")
    r = radio(radio_name)
    src = r.source if radio_name != default else f"{r.source}; the default when no radio or link is given"
    return Carrier(f"{r.name} {DIRECTIONS[d]}", r.rate(d), src, "ip")


def radio_rows() -> list[dict[str, object]]:
    """The presets, for help texts and a listing."""
    return [
        {"name": r.name, "downlink_bps": r.downlink, "uplink_bps": r.uplink, "source": r.source}
        for r in RADIOS.values()
    ]
