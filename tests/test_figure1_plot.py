"""Figure 1's plot: re-drawn from its committed CSV, with labels only where they fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from labsched.evaluation.labs import figure1 as fig1

CSV = Path(__file__).resolve().parents[1] / "docs" / "results" / "figure1" / "figure1.csv"


def test_points_csv_round_trips(tmp_path):
    points = fig1.read_points_csv(CSV)
    assert len(points) == 62 and {p.objective for p in points} == {"cosines", "hartmann3"}
    again = fig1.read_points_csv(fig1.write_points_csv(points, tmp_path / "f.csv"))
    assert again == points
    rho = fig1.spearman_by_objective(points)
    assert round(rho["cosines"][0], 3) == -0.776 and round(rho["hartmann3"][0], 3) == -0.725  # figure1.md
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"are not those of figure1\.csv"):
        fig1.read_points_csv(tmp_path / "bad.csv")


def test_labels_never_overlap_each_other_or_leave_the_axes(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    seen = {}
    real = fig1.save_figure

    def capture(fig, path):
        renderer = fig.canvas.get_renderer()
        for ax in fig.axes:
            texts = [t for t in ax.texts if t.get_text()]
            boxes = [t.get_window_extent(renderer) for t in texts]
            seen[ax.get_title()] = ({t.get_text() for t in texts}, boxes, ax.get_window_extent(renderer))
        return real(fig, path)

    monkeypatch.setattr(fig1, "save_figure", capture)
    points = fig1.read_points_csv(CSV)
    png = fig1.plot_figure1(points, fig1.spearman_by_objective(points), tmp_path / "figure1.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(seen) == 2
    for title, (labels, boxes, inside) in seen.items():
        n = len(boxes)
        assert f"\n{n} of 31 points labelled" in title
        assert {"onfcp", "onmel", "ofstaged", "ofil", "ps", "random"} <= labels  # baselines first
        assert 15 <= n <= 31  # most points keep their label
        for i, a in enumerate(boxes):
            assert inside.x0 <= a.x0 and a.x1 <= inside.x1 and inside.y0 <= a.y0 and a.y1 <= inside.y1
            for b in boxes[i + 1 :]:
                assert not a.overlaps(b), title


def test_no_labels_when_asked(tmp_path):
    pytest.importorskip("matplotlib")
    points = fig1.read_points_csv(CSV)
    png = fig1.plot_figure1(points, {}, tmp_path / "f.png", label_points=False)
    assert png.is_file()
