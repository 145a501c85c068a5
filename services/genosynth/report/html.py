"""The report page: one self-contained static HTML file (inline CSS, relative links to the PNGs).

The page is ``templates/report.html`` rendered by jinja2 with autoescape on: every value of the run (trait
and column names, captions, the dataset URL, failure lines) is escaped; only the template's own markup is
HTML. The style sheet ``templates/report.css`` is inlined so the page stands alone.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jinja2

TEMPLATE = "report.html"
SECTIONS = "sections.html"  # the macros of the page's parts


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table cell: thousands separators for integers, ``digits`` significant digits else.

    Plain text: the template escapes it (NaN and ``None``, an unmeasurable value, read "–").
    """
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
    return str(value)



def _general(value: float) -> str:
    return f"{value:g}"


@functools.cache
def environment() -> jinja2.Environment:
    """The template environment: autoescape on, and an undefined name is an error rather than blank."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("genosynth.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = fmt
    env.filters["g"] = _general
    env.globals["zip"] = zip
    return env


def render_page(**context: Any) -> str:
    """The whole page from the run's records (see ``report.step.build`` for the context)."""
    return environment().get_template(TEMPLATE).render(**context)


def render_verdict(gate: Any, released: bool) -> str:
    """The privacy verdict banner alone (the first thing on the page)."""
    return str(environment().get_template(SECTIONS).module.verdict(gate, released))
