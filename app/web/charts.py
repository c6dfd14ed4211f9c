"""Charts drawn on the server as SVG geometry (the macro templates/_ui/chart.html writes the markup): no script
and no style attribute, so they run under the strict Content-Security-Policy and with JavaScript off. Colours
and strokes come from the stylesheet's `chart__…` classes; the page shows the table each chart was drawn from.

A bar chart draws one bar per label and series (a zero is a bar of no height, so every label has its bars); a
line chart draws a point per label with a value and joins neighbouring points (None leaves a gap). The value
axis starts at 0 and rises in GRID_LINES round steps to the largest value or above (or to `top` when given).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 28, 28  # room for the value axis, the legend and the day labels
X_LABELS_MAX = 8
GRID_LINES = 4


@dataclass(frozen=True)
class Series:
    name: str
    css: str  # the class suffix that colours it: chart__bar--<css>, chart__line--<css>
    values: Sequence[float | None]


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Point:
    cx: float
    cy: float
    css: str
    title: str


@dataclass(frozen=True)
class Line:
    css: str
    d: str


@dataclass(frozen=True)
class LegendEntry:
    x: float
    css: str
    name: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_bottom: float
    grid: list[Tick]
    x_labels: list[Tick]
    legend: list[LegendEntry]
    bars: list[Bar]
    lines: list[Line]
    points: list[Point]


def bar_chart(labels: Sequence[str], series: Sequence[Series], value_text: Callable[[float], str]) -> Chart:
    """Grouped bars: one group per label, one bar per series in it."""
    frame = _Frame(len(labels), axis_top(max((v for s in series for v in s.values if v is not None), default=0)))
    bars = []
    group = frame.step * 0.8
    width = group / max(len(series), 1)
    for index, one in enumerate(series):
        for n, value in enumerate(one.values):
            height = frame.height_of(value or 0)
            x = frame.x(n) - group / 2 + index * width
            bars.append(Bar(round(x, 1), round(frame.bottom - height, 1), round(max(width - 1, 0.5), 1),
                            round(height, 1), one.css, f"{labels[n]}: {one.name} {value_text(value or 0)}"))
    return frame.chart(labels, series, value_text, bars=bars)


def line_chart(labels: Sequence[str], series: Sequence[Series], value_text: Callable[[float], str],
               top: float | None = None) -> Chart:
    """A line per series through its values (None: no point, and a gap in the line)."""
    highest = max((v for s in series for v in s.values if v is not None), default=0)
    frame = _Frame(len(labels), top if top is not None else axis_top(highest))
    lines, points = [], []
    for one in series:
        parts, pen_down = [], False
        for n, value in enumerate(one.values):
            if value is None:
                pen_down = False
                continue
            x, y = round(frame.x(n), 1), round(frame.bottom - frame.height_of(value), 1)
            parts.append(f"{'L' if pen_down else 'M'}{x},{y}")
            pen_down = True
            points.append(Point(x, y, one.css, f"{labels[n]}: {one.name} {value_text(value)}"))
        if parts:
            lines.append(Line(one.css, " ".join(parts)))
    return frame.chart(labels, series, value_text, lines=lines, points=points)


def axis_top(highest: float) -> float:
    """The top of the value axis: GRID_LINES round steps (1, 2 or 5 times a power of ten, at least 1: the
    series are counts and rupees) reaching `highest` or above."""
    wanted = max(highest / GRID_LINES, 1)
    power = 10 ** math.floor(math.log10(wanted))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= wanted) * GRID_LINES


class _Frame:
    """The plot area of WIDTH × HEIGHT with `count` labels side by side and a value axis from 0 to `top`."""

    def __init__(self, count: int, top: float) -> None:
        self.count, self.top = count, top
        self.left, self.right = LEFT, WIDTH - RIGHT
        self.bottom, self.ceiling = HEIGHT - BOTTOM, TOP
        self.step = (self.right - self.left) / max(count, 1)

    def x(self, n: int) -> float:
        return self.left + self.step * (n + 0.5)

    def height_of(self, value: float) -> float:
        return max(value, 0) / self.top * (self.bottom - self.ceiling)

    def chart(self, labels: Sequence[str], series: Sequence[Series], value_text: Callable[[float], str], *,
              bars: list[Bar] | None = None, lines: list[Line] | None = None,
              points: list[Point] | None = None) -> Chart:
        grid = [Tick(self.left, round(self.bottom - self.height_of(self.top * k / GRID_LINES), 1),
                     value_text(self.top * k / GRID_LINES)) for k in range(GRID_LINES + 1)]
        every = max(math.ceil(self.count / X_LABELS_MAX), 1)
        x_labels = [Tick(round(self.x(n), 1), HEIGHT - 8, labels[n]) for n in range(0, self.count, every)]
        legend = [LegendEntry(self.left + 150 * index, one.css, one.name) for index, one in enumerate(series)]
        return Chart(WIDTH, HEIGHT, self.left, self.right, self.bottom, grid, x_labels, legend, bars or [],
                     lines or [], points or [])
