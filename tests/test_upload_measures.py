"""An upload's figures computed where the upload is analysed (testbed.upload), from hand-made modes: the
seconds parallel creation saves and their share, the one measured-against-predicted join, and the views
showing exactly those numbers. No run needed (no root)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pktchar.testbed.upload import ModeResult, Plan, UploadConfig, UploadReport


def _mode(mode: str, upload_s: float | None, **kw: object) -> ModeResult:
    base: dict[str, object] = dict(
        mode=mode, upload_s=upload_s, wire_s=24.3, exact_s=25.4, exact_calibrated_s=None,
        query_up_bytes_during=0, exact_with_queries_s=25.4, exact_with_builds_s=None, build_total_s=5.2,
        builds=[], stall_s=None, all_built_s=None, queries=[], wire_bytes_measured=None,
        wire_bytes_predicted=0,
        result=SimpleNamespace(artifacts=SimpleNamespace(pcap="x.pcap", result="x.result.json"), error=None),
    )  # fmt: skip
    return ModeResult(**{**base, **kw})  # type: ignore[arg-type]


def _report(model: str, *modes: ModeResult, sizes: list[int] | None = None) -> UploadReport:
    sizes = sizes or [1_000, 2_000]
    plan = Plan(model, "224", [1, 3, 224, 224], [(0, 1), (1, 2)][: len(sizes)], ["a", "b"][: len(sizes)], sizes,
                sizes, [], 2, [0.1, 0.1], [0.01, 0.01], [], "test")  # fmt: skip
    return UploadReport(UploadConfig(model), plan, list(modes))


def test_saved_seconds_and_share_are_the_papers_for_its_own_times() -> None:
    # the paper's Table 1 (JOK 2022): MobileNet's upload went from 3.0 s to 2.1 s, "0.9 s, 30.0 %";
    # ResNet-152's from 32.3 s to 26.0 s, 6.3 s saved: 6.3 / 32.3 = 19.5 % (the paper prints 19.3 %)
    mobile = _report("mobilenet_v1", _mode("sequential", 3.0), _mode("parallel", 2.1))
    assert mobile.saved_s == pytest.approx(0.9) and mobile.saved_fraction == pytest.approx(0.30)
    resnet = _report("resnet152", _mode("sequential", 32.3), _mode("parallel", 26.0))
    assert resnet.saved_s == pytest.approx(6.3) and resnet.saved_fraction == pytest.approx(0.19505, abs=1e-5)
    # either mode alone, or an upload that did not finish, saves nothing measurable
    assert _report("x", _mode("sequential", 3.0)).saved_s is None
    unfinished = _report("x", _mode("sequential", 3.0), _mode("parallel", None))
    assert unfinished.saved_s is None and unfinished.saved_fraction is None
    d = mobile.to_dict()
    assert d["saved_s"] == pytest.approx(0.9) and d["saved_fraction"] == pytest.approx(0.30)


def test_mode_measures_are_the_one_join() -> None:
    # ResNet-152 in the paper: expected 24.3 s, the old system took 32.3 s: 8.0 / 24.3 = +32.92 % over the
    # pure wire time; 1,010 B measured where 1,000 were predicted: +1 %
    m = _mode("sequential", 32.3, wire_bytes_measured=1_010, wire_bytes_predicted=1_000)
    j = m.measures()
    assert j.wire.error == pytest.approx(0.329218, abs=1e-6) and j.wire.unit == "s"
    assert j.wire_bytes.error == pytest.approx(0.01) and j.wire_bytes.unit == "B"
    assert j.exact_calibrated.error is None and j.with_builds.error is None  # nothing predicted
    assert [x["relative_error"] for x in m.to_dict()["measures"]] == [x.error for x in j]
    # Ethernet, IP and TCP headers: 25.4 s exact against 24.3 s pure, +4.53 %
    assert m.framing == pytest.approx(1.1 / 24.3)


def test_query_figures() -> None:
    q = [
        {"seconds": 0.50, "during_upload": True, "plan": 0, "of": 2},
        {"seconds": 0.10, "during_upload": False, "plan": 2, "of": 2},
        {"seconds": 0.20, "during_upload": False, "plan": 2, "of": 2},
    ]
    m = _mode("parallel", 2.1, queries=q)
    assert len(m.queries_during) == 1 and len(m.queries_after) == 2
    assert m.query_after_s == pytest.approx(0.15) and m.whole_model_after
    assert not _mode("parallel", 2.1, queries=[{**q[1], "plan": 1}]).whole_model_after
    assert _mode("parallel", 2.1, queries=q[:1]).query_after_s is None


def test_views_show_the_reports_numbers() -> None:
    from pktchar.present import views

    rep = _report(
        "mobilenet_v1", _mode("sequential", 3.0), _mode("parallel", 2.1), sizes=[7_000_000, 10_070_000]
    )
    (row,) = views.upload_table1([rep]).rows
    assert row["saved"] == rep.saved_s and row["pct"] == rep.saved_fraction
    assert row["size"] == pytest.approx(17.07)  # 17,070,000 B packed
    assert row["paper_saved"] == 0.9 and row["paper_pct"] == pytest.approx(0.30)
    assert "parallel creation saves 0.90 s (30.0%) of the upload time" in views.upload_lines(rep)
    table = views.upload_modes_table(rep)
    wire = next(r for r in table.rows if str(r["quantity"]).startswith("pure wire time"))
    assert wire["sequential_err"] == rep.modes[0].measures().wire.error == pytest.approx(3.0 / 24.3 - 1)
