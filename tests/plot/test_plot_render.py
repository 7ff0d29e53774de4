"""The PNG, SVG and HTML renderers: valid files that show what plot_data prepared."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET

import pytest

from autopeft.plot import plot_data, write_plot
from autopeft.plot import render as render_mod


@pytest.fixture
def data(trials, front):
    confirmed = [{**front[0], "seeds": 3, "metric_std": 0.012, "tied_with": [3]}, *front[1:]]
    return plot_data(trials, confirmed, primary="accuracy", title="demo: rte on minilm")


def test_png(tmp_path, data):
    out = write_plot(data, tmp_path / "front.png")
    blob = out.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n" and blob[12:16] == b"IHDR"
    width, height = struct.unpack(">II", blob[16:24])
    assert width > 800 and height > 600 and len(blob) > 20_000
    assert [p.name for p in tmp_path.iterdir()] == ["front.png"]  # no temp file left


def test_svg(tmp_path, data):
    out = write_plot(data, tmp_path / "front.SVG")
    root = ET.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = out.read_text()
    # matplotlib writes text as glyph paths; it names each text object in a comment
    for label in ("#0", "#1,#8", "#3", "accuracy", "trainable parameters", "infeasible"):
        assert f"<!-- {label} -->" in text


def test_html_is_self_contained_and_shows_every_drawn_trial(tmp_path, data):
    out = write_plot(data, tmp_path / "front.html")
    html = out.read_text()
    assert html.lstrip().lower().startswith("<html") or "<!doctype html" in html[:200].lower()
    # plotly.js inline: no script loaded from the network
    assert not re.search(r"<script[^>]+src=", html) and len(html) > 1_000_000
    for p in data.points + data.strip:
        assert f"trial {p.number}: {p.method} ({p.status})" in html
    for value in ("accuracy 0.8000", "accuracy 0.7400", "accuracy 0.7900", "0.0120 over 3 seeds",
                  "300,000 trainable parameters", "predicted peak 29.3 GiB"):
        assert value in html


def test_both_renderers_draw_the_same_points(data):
    """matplotlib's artists and plotly's traces hold exactly the prepared coordinates."""
    fig = render_mod._matplotlib_figure(data)
    main, lanes = fig.axes[:2]
    mpl_points = sorted(tuple(map(float, xy)) for c in main.collections
                        if type(c).__name__ == "PathCollection" for xy in c.get_offsets())
    mpl_line = [tuple(map(float, xy)) for ln in main.get_lines()
                if ln.get_label() == "Pareto front" for xy in ln.get_xydata()]
    mpl_strip = sorted((float(x), data.lanes[int(y)]) for c in lanes.collections
                       for x, y in c.get_offsets())
    pfig = render_mod._plotly_figure(data)
    markers = [t for t in pfig.data if t.mode == "markers" and t.yaxis in (None, "y")]
    strip = [t for t in pfig.data if t.mode == "markers" and t.yaxis == "y2"]
    lines = [t for t in pfig.data if t.mode == "lines"]
    plotly_points = sorted((float(x), float(y)) for t in markers
                           for x, y in zip(t.x, t.y, strict=True))
    expected = sorted((p.x, p.y) for p in data.points)
    assert mpl_points == plotly_points == expected
    assert mpl_line == list(zip(lines[0].x, lines[0].y, strict=True)) == data.front_line
    plotly_strip = sorted((float(x), y) for t in strip for x, y in zip(t.x, t.y, strict=True))
    assert mpl_strip == plotly_strip == sorted((p.x, p.status) for p in data.strip)
    # error bars: one, on trial 0, of 0.012, in both
    bars = [t.error_y.array for t in markers if t.error_y and t.error_y.array is not None]
    assert sorted(v for arr in bars for v in arr if v) == [0.012]
    segments = [seg for c in main.collections if type(c).__name__ == "LineCollection"
                for seg in c.get_segments()]
    assert [(s[0][1], s[1][1]) for s in segments] == [
        pytest.approx((0.80 - 0.012, 0.80 + 0.012))]
    assert main.get_xscale() == "log" and pfig.layout.xaxis.type == "log"


def test_plot_without_strip_or_points(tmp_path, trials, front):
    done = [t for t in trials if t["status"] == "completed"]
    data = plot_data(done, front, primary="accuracy")
    assert not data.strip
    assert write_plot(data, tmp_path / "a.png").stat().st_size > 0
    assert len(render_mod._matplotlib_figure(data).axes) == 1
    empty = plot_data([], [], primary="accuracy", title="nothing yet")
    assert "no completed trial to plot yet" in write_plot(empty, tmp_path / "e.html").read_text()
    assert write_plot(empty, tmp_path / "e.svg").stat().st_size > 0


def test_a_failed_draw_leaves_the_old_file_and_no_temp(tmp_path, data, monkeypatch):
    out = tmp_path / "front.png"
    out.write_bytes(b"old plot")

    def broken(_):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(render_mod, "_matplotlib_figure", broken)
    with pytest.raises(RuntimeError):
        write_plot(data, out)
    assert out.read_bytes() == b"old plot" and [p.name for p in tmp_path.iterdir()] == [
        "front.png"]
    with pytest.raises(ValueError, match="unknown plot format '.pdf'"):
        write_plot(data, tmp_path / "front.pdf")
    with pytest.raises(OSError):
        write_plot(data, tmp_path / "missing" / "front.png")
