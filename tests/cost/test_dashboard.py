"""The Grafana dashboard shows what issue 5 asks for and only queries metrics that exist."""

from __future__ import annotations

import json
import re

import yaml

from genosynth.cost import metrics

from .conftest import DASHBOARD_FILE, RULES_FILE

# Prometheus' own series the dashboard may use besides ours.
BUILTIN_SERIES = {"ALERTS"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
                "offset", "bool", "le", "step", "run", "alertname", "alertstate", "inf", "nan"}


def _dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text())


def _series_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    expr = re.sub(r'"[^"]*"', '""', expr)          # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)           # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)          # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping label lists
    tokens = re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr)
    return {name for name, call in tokens if not call and name.lower() not in PROMQL_WORDS}


def _known_series() -> set[str]:
    rules = [r for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"]]
    return set(metrics.SERIES) | {r["record"] for r in rules if "record" in r} | BUILTIN_SERIES


def test_dashboard_has_the_cost_panels():
    titles = {p["title"] for p in _dashboard()["panels"]}
    assert {"GPU hours", "Dollars spent vs budget", "Burn rate", "Batches done / total",
            "Step durations (p50, p95)", "Failed attempts"} <= titles


def test_every_query_references_existing_metrics():
    known = _known_series()
    for panel in _dashboard()["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = _series_names(target["expr"])
            assert names, f"{panel['title']}: no metric in {target['expr']}"
            assert names <= known, f"{panel['title']}: unknown series {sorted(names - known)}"


def test_series_name_extraction_sees_unknown_metrics():
    # The check above is only as good as this parser: it must see through functions, matchers, grouping.
    expr = 'histogram_quantile(0.9, sum by (step, le) (rate(genosynth_gpu_secs_bucket{run=~"$run"}[5m])))'
    assert _series_names(expr) == {"genosynth_gpu_secs_bucket"}
    assert _series_names("genosynth:cost_dollars:sum / on (run) genosynth:budget_dollars:max") == {
        "genosynth:cost_dollars:sum", "genosynth:budget_dollars:max"}


def test_dashboard_is_selectable_by_run_and_datasource():
    dashboard = _dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert "genosynth_budget_dollars" in variables["run"]["definition"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert '$run"' in target["expr"], f"{panel['title']} ignores the run selector"
