"""Server-rendered SVG charts of the org dashboard: geometry only, the template draws it.

No charting library and no script: the page's Content-Security-Policy refuses inline
script and style, so every shape is an SVG element with presentation attributes and a
CSS class; each bar carries its day and value (`data-*`) and a <title> for a tooltip.
"""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 420, 190
LEFT, RIGHT, TOP, BOTTOM = 40, 20, 12, 22
KIND_ORDER = ("calendar", "contacts", "tasks")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    day: str
    series: str
    value: int
    title: str


@dataclass(frozen=True)
class Line:
    y: float
    css: str
    label: str
    value: int


@dataclass(frozen=True)
class Tick:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    bars: list[Bar]
    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    legend: list[tuple[str, str]]
    empty: bool
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def plot_bottom(self) -> int:
        return self.height - BOTTOM

    @property
    def plot_left(self) -> int:
        return LEFT


def _nice_max(value: float) -> int:
    if value <= 0:
        return 1
    step = 1
    while step * 10 <= value:
        step *= 10
    for m in (1, 2, 5, 10):
        if m * step >= value:
            return m * step
    return 10 * step


def _frame(days: list, top: float):
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(days))

    def y_of(v: float) -> float:
        return TOP + plot_h - plot_h * (v / top)

    # Counted back from today, so today is labelled and no two labels overlap.
    last = len(days) - 1
    x_ticks = [Tick(LEFT + slot * i + slot / 2, HEIGHT - 6, f"{d:%d %b}")
               for i, d in enumerate(days) if (last - i) % 7 == 0]
    steps = (0, 0.5, 1) if top % 2 == 0 else (0, 1)  # only whole-number labels
    y_ticks = [Tick(LEFT - 6, y_of(top * f) + 4, f"{round(top * f):,}") for f in steps]
    return slot, plot_h, y_of, x_ticks, y_ticks


def runs_chart(points, *, series: str, name: str, title: str) -> Chart:
    """Stacked bars per day and kind; `series` is "runs" or "errors" (a DayPoint field)."""
    days = [p.day for p in points]
    totals = [sum(getattr(p, series).values()) for p in points]
    top = _nice_max(max(totals or [0]))
    slot, _, y_of, x_ticks, y_ticks = _frame(days, top)
    bars = []
    for i, p in enumerate(points):
        base = 0
        for kind in KIND_ORDER:
            v = getattr(p, series).get(kind, 0)
            if not v:
                continue
            y0, y1 = y_of(base), y_of(base + v)
            bars.append(Bar(LEFT + slot * i + slot * 0.15, y1, slot * 0.7, y0 - y1,
                            f"bar-{kind}" + (" bar-error" if series == "errors" else ""),
                            p.day.isoformat(), kind, v, f"{p.day:%d %b}: {v} {kind} {series}"))
            base += v
    extra = " bar-error" if series == "errors" else ""
    legend = [(f"bar-{k}{extra}", k.capitalize()) for k in KIND_ORDER]
    return Chart(name, title, bars, [], x_ticks, y_ticks, legend, empty=not any(totals))


def api_chart(points, *, budget) -> Chart:
    """Salesforce requests per day against LinkPoint's budget, today's forecast outlined."""
    days = [p.day for p in points]
    values = [p.sf_requests for p in points]
    forecast = budget.forecast if budget.known else values[-1] if values else 0
    highest = max([*values, forecast, 1])
    # The budget line joins the scale only when it is near the bars; far above them it would
    # flatten every bar to nothing, so the caption states it instead.
    cap_in_scale = budget.known and budget.cap <= highest * 3
    top = _nice_max(max(highest, budget.cap if cap_in_scale else 0) * 1.05)
    slot, _, y_of, x_ticks, y_ticks = _frame(days, top)
    bars = []
    for i, p in enumerate(points):
        x = LEFT + slot * i + slot * 0.15
        if i == len(points) - 1 and forecast > p.sf_requests:
            bars.append(Bar(x, y_of(forecast), slot * 0.7, y_of(0) - y_of(forecast), "bar-forecast",
                            p.day.isoformat(), "forecast", forecast,
                            f"Today's forecast: {forecast:,} requests"))
        if p.sf_requests:
            bars.append(Bar(x, y_of(p.sf_requests), slot * 0.7, y_of(0) - y_of(p.sf_requests),
                            "bar-api", p.day.isoformat(), "requests", p.sf_requests,
                            f"{p.day:%d %b}: {p.sf_requests:,} Salesforce requests"))
    lines = []
    if cap_in_scale:
        lines.append(Line(y_of(budget.cap), "line-cap",
                          f"LinkPoint budget {budget.cap:,} ({budget.share}%)", budget.cap))
        if budget.limit <= top:
            lines.append(Line(y_of(budget.limit), "line-limit",
                              f"Daily limit {budget.limit:,}", budget.limit))
    legend = [("bar-api", "Requests"), ("bar-forecast", "Today's forecast"),
              ("line-cap", "Budget")]
    title = "Salesforce API requests per day"
    if budget.known and not cap_in_scale:
        title += f" (budget {budget.cap:,} a day, far above)"
    return Chart("api", title, bars, lines, x_ticks, y_ticks, legend,
                 empty=not any(values) and not budget.known)
