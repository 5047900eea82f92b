"""Figures and text for people: 1.2k, 3m 20s, 42%, every value HTML-escaped.

Values in a report come from the logs, that is from anyone on the internet: every piece of
text goes through :func:`esc` (or :func:`cell`, which escapes too) before it reaches the page.
"""

from __future__ import annotations

import html

LONG_TEXT = 120  # characters shown of a long value; the whole value is in the title


def esc(value: object) -> str:
    """Text safe inside an element and inside a double- or single-quoted attribute."""
    return html.escape(str(value), quote=True)


def short_number(value: float) -> str:
    """Plausible's style: 999, 1.2k, 12k, 1.2M, 3.4B."""
    number = float(value)
    units = ((1e3, "k"), (1e6, "M"), (1e9, "B"))
    for i, (limit, suffix) in enumerate(units):
        if abs(number) < limit or (i + 1 < len(units) and abs(number) >= units[i + 1][0]):
            continue
        scaled = number / limit
        text = f"{scaled:.1f}" if abs(scaled) < 9.95 else f"{scaled:.0f}"
        if abs(float(text)) >= 1000 and i + 1 < len(units):  # 999,999 reads 1M, not 1000k
            return "1" + units[i + 1][1]
        return text.removesuffix(".0") + suffix
    return f"{number:.0f}" if number == int(number) else f"{number:.2f}"


def duration(seconds: float) -> str:
    """3m 20s, 1h 5m, 45s."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def exact(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def number_html(value: float) -> str:
    """A short figure with the exact one on hover."""
    return f'<span title="{esc(exact(value))}">{esc(short_number(value))}</span>'


def duration_html(seconds: float) -> str:
    return f'<span title="{esc(f"{round(seconds):,} seconds")}">{esc(duration(seconds))}</span>'


def percent_html(value: float) -> str:
    return f'<span title="{esc(f"{value:.2f} %")}">{esc(f"{value:.0f}%")}</span>'


def text_html(value: object) -> str:
    """A value from the logs: escaped, cut when long (the whole value on hover)."""
    text = str(value)
    if len(text) <= LONG_TEXT:
        return esc(text)
    return f'<span title="{esc(text)}">{esc(text[: LONG_TEXT - 1])}…</span>'
