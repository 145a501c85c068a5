"""The report page: one self-contained static HTML file (inline CSS, relative links to the PNGs)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

CSS = """
:root { --real: #1f4e79; --synth: #b45309; --ok: #166534; --ok-bg: #dcfce7; --bad: #991b1b;
        --bad-bg: #fee2e2; --ink: #1f2933; --muted: #52606d; --line: #e4e7eb; --panel: #f8fafc; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink);
       background: #fff; }
header { background: #0f2a44; color: #fff; padding: 28px 40px 22px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 600; }
header .sub { color: #c8d6e5; font-size: 14px; }
header code { color: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 10px 40px 60px; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 8px 40px;
      font-size: 14px; z-index: 2; }
nav a { margin-right: 18px; color: var(--real); text-decoration: none; }
h2 { font-size: 21px; margin: 40px 0 6px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
h3 { font-size: 17px; margin: 26px 0 8px; }
p.note { color: var(--muted); font-size: 13.5px; margin: 4px 0 12px; max-width: 900px; }
.verdict { margin: 24px 0 8px; padding: 18px 22px; border-radius: 8px; border-left: 8px solid; }
.verdict.pass { background: var(--ok-bg); border-color: var(--ok); color: var(--ok); }
.verdict.fail { background: var(--bad-bg); border-color: var(--bad); color: var(--bad); }
.verdict .big { font-size: 22px; font-weight: 700; }
.verdict ul { margin: 8px 0 0 18px; padding: 0; color: var(--ink); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 12px;
         margin: 16px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { font-size: 12.5px; color: var(--muted); }
.card .value { font-size: 22px; font-weight: 600; }
.card .hint { font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13.5px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: var(--panel); font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
td.name { text-align: left; white-space: normal; max-width: 520px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.badge.pass { background: var(--ok-bg); color: var(--ok); }
.badge.fail { background: var(--bad-bg); color: var(--bad); }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; max-width: 900px; }
.row { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.row > * { flex: 1 1 360px; }
.real { color: var(--real); font-weight: 600; } .synth { color: var(--synth); font-weight: 600; }
dl.defs dt { font-weight: 600; margin-top: 8px; } dl.defs dd { margin: 2px 0 0 0; color: var(--muted); }
footer { color: var(--muted); font-size: 12px; margin-top: 40px; border-top: 1px solid var(--line);
         padding-top: 10px; }
"""


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table cell: thousands separators for integers, ``digits`` significant digits else."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.{digits - 1}e}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return escape(str(value))


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, raw: bool = False) -> str:
    """An HTML table; cells are formatted with :func:`fmt` unless ``raw`` (already HTML)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell if raw and isinstance(cell, str) else fmt(cell)
            cls = ' class="name"' if i == 0 or (isinstance(cell, str) and not raw) else ""
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(src: str, caption: str, alt: str) -> str:
    return (f'<figure><img src="{escape(src)}" alt="{escape(alt)}" loading="lazy">'
            f"<figcaption>{caption}</figcaption></figure>")


def card(label: str, value: str, hint: str = "") -> str:
    return (f'<div class="card"><div class="label">{escape(label)}</div><div class="value">{value}</div>'
            f'<div class="hint">{hint}</div></div>')


def badge(passed: bool) -> str:
    return '<span class="badge pass">pass</span>' if passed else '<span class="badge fail">fail</span>'


@dataclass
class Page:
    """The report under construction: sections are appended in reading order."""

    title: str
    subtitle: str
    sections: list[tuple[str, str, str]] = field(default_factory=list)  # (anchor, heading, html)
    preamble: str = ""
    footer: str = ""

    def add(self, anchor: str, heading: str, body: str) -> None:
        self.sections.append((anchor, heading, body))

    def render(self) -> str:
        nav = "".join(f'<a href="#{a}">{escape(h)}</a>' for a, h, _ in self.sections)
        body = "".join(f'<section id="{a}"><h2>{escape(h)}</h2>{html}</section>'
                       for a, h, html in self.sections)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(self.title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{escape(self.title)}</h1><div class=\"sub\">{self.subtitle}</div></header>"
            f"<nav>{nav}</nav><main>{self.preamble}{body}<footer>{self.footer}</footer></main></body></html>\n"
        )
