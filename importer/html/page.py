"""The page around a report: one self-contained HTML file, no script, a strict CSP.

The stylesheet (``report.css``, package data) is inlined and allowed by its hash alone; the
Content-Security-Policy forbids scripts, connections, images, fonts, frames and forms, so a
value that slipped through escaping still could neither run nor load anything.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources

from .. import __version__
from .chart import Series
from .fmt import duration_html, esc, number_html, percent_html, text_html
from .imported import Breakdown


@lru_cache(maxsize=1)
def stylesheet() -> str:
    return resources.files(__package__).joinpath("report.css").read_text(encoding="utf-8")


def content_security_policy(css: str) -> str:
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return (
        f"default-src 'none'; style-src 'sha256-{digest}'; script-src 'none'; img-src 'none'; "
        "font-src 'none'; connect-src 'none'; frame-src 'none'; object-src 'none'; base-uri 'none'; "
        "form-action 'none'"
    )


def page(title: str, body: Iterable[str], generated: dt.datetime | None = None) -> str:
    css = stylesheet()
    when = (generated or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(content_security_policy(css))}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer">',
            f"<title>{esc(title)}</title><style>{css}</style></head><body><main>",
            *body,
            f"</main><footer>Written by plausible-import {esc(__version__)} on {esc(when)}.</footer></body></html>\n",
        ]
    )


def value_html(value: float, kind: str) -> str:
    if kind == "percent":
        return percent_html(value)
    if kind == "duration":
        return duration_html(value)
    return number_html(value)


def figures_html(items: Sequence[tuple[str, float, str]], label: str) -> str:
    """Big figures: (title, value, kind) each, as a description list."""
    cells = "".join(
        f'<div class="figure"><dt>{esc(title)}</dt><dd data-figure="{esc(title)}" '
        f'data-exact="{esc(value)}">{value_html(value, kind)}</dd></div>'
        for title, value, kind in items
    )
    return f'<dl class="figures" aria-label="{esc(label)}">{cells}</dl>'


def table_html(
    headers: Sequence[tuple[str, bool]], rows: Iterable[Sequence[str]], caption: str = "", attrs: str = ""
) -> str:
    """A table of ready-escaped cells; ``headers``: (title, numeric)."""
    head = "".join(f'<th scope="col"{" class=num" if numeric else ""}>{esc(title)}</th>' for title, numeric in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="{"num" if numeric else "value"}">{cell}</td>'
            for (_, numeric), cell in zip(headers, row, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    cap = f'<caption class="muted">{esc(caption)}</caption>' if caption else ""
    return f"<table{attrs}>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def breakdown_html(breakdown: Breakdown) -> str:
    headers = [(breakdown.label, False)] + [(title, True) for title, _ in breakdown.columns]
    rows = [
        [text_html(value)] + [value_html(v, kind) for v, (_, kind) in zip(values, breakdown.columns, strict=True)]
        for value, values in breakdown.rows
    ]
    if rows:
        table = table_html(headers, rows, attrs=f' data-breakdown="{esc(breakdown.title)}"')
    else:
        table = '<p class="muted">Nothing in the files.</p>'
    more = f'<p class="muted">and {breakdown.more:,} more</p>' if breakdown.more else ""
    note = f'<p class="muted">{esc(breakdown.note)}</p>' if breakdown.note else ""
    return f'<section class="card"><h3>{esc(breakdown.title)}</h3>{table}{more}{note}</section>'


def legend_html(series: Sequence[Series]) -> str:
    items = "".join(
        f'<span><svg width="22" height="10" aria-hidden="true"><line class="line s-{one.key}" x1="1" '
        f'x2="21" y1="5" y2="5" stroke-width="3"/></svg>{esc(one.label)}</span>'
        for one in series
    )
    return f'<div class="legend">{items}</div>'


def notices_html(lines: Sequence[str], label: str) -> str:
    if not lines:
        return ""
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return f'<section class="notice" aria-label="{esc(label)}"><ul>{items}</ul></section>'


def counts_html(title: str, counts: dict[str, int], label: str) -> str:
    rows = [[text_html(name), number_html(count)] for name, count in sorted(counts.items(), key=lambda kv: -kv[1])]
    if not rows:
        return ""
    return f'<section class="card"><h3>{esc(title)}</h3>{table_html([(label, False), ("Count", True)], rows)}</section>'
