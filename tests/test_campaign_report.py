"""The campaign dashboard: one self-contained HTML file, checked in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from labsched import LabSpec
from labsched.campaign import Campaign, simulate

pytest.importorskip("plotly")

CHARTS = ("posterior", "candidates", "calendar", "progress")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    spec = LabSpec(n_experiments=8, n_labs=3, horizon=4.0)
    c = simulate(d / "sim.db", objective="cosines", spec=spec, seed=0, stop_when={"sd_at_best": 0.05})
    c.close()
    # a campaign still running, so the calendar has running and planned experiments
    live = Campaign.create(d / "live.db", spec=spec, bounds=[(0, 1), (0, 1), (0, 2)], seed=1)
    orders = live.ask(now=0.0)
    live.tell(orders[0].id, y=0.3, finished_at=0.9)
    live.ask(now=0.9)
    return {
        "sim": Campaign.open(d / "sim.db").report(d / "sim.html"),
        "live": live.report(d / "live.html"),
        "dir": d,
    }


def test_report_is_self_contained_and_backed_by_tables(report):
    text = report["sim"].read_text()
    assert "<script src=" not in text  # plotly.js is embedded, nothing is fetched
    assert text.count("Plotly.newPlot") == len(CHARTS)
    for name in CHARTS:
        assert f'id="chart-{name}"' in text
    assert "Data source: campaign journal" in text and "src:" in text
    assert text.count("<table>") >= len(CHARTS) + 2  # a table per chart, plus status and decision log
    assert "lsHighlight([0, 1, 2]" in text  # the first decision's row highlights its orders
    assert 'id="order-0"' in text
    live = report["live"].read_text()
    assert "planned stages of the independent-lab schedule" in live or "waiting until" in live
    assert "x2" in live  # 3-d: slices and a third column


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (apt-get install -y chromium)"
)
@pytest.mark.parametrize("which", ["sim", "live"])
def test_report_renders_in_headless_chromium(report, which):
    d = report["dir"]
    flags = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={d / 'profile'}",
        "--virtual-time-budget=10000",
        "--enable-logging=stderr",
        "--v=0",
    ]
    url = report[which].resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for name in CHARTS:
        m = re.search(rf'<div id="chart-{name}"[^>]*class="[^"]*js-plotly-plot', dom.stdout)
        assert m, f"chart {name} did not render"
    assert dom.stdout.count('class="main-svg"') >= 2 * len(CHARTS)  # Plotly's SVG layers
    console = [
        line for line in dom.stderr.splitlines() if "CONSOLE" in line and ("Error" in line or "error" in line)
    ]
    assert not console, console
    shot = d / f"{which}.png"
    res = subprocess.run(
        [*flags, "--window-size=1200,4200", f"--screenshot={shot}", url],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0 and shot.stat().st_size > 50_000
