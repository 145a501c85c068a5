"""The cost alert rules pass ``promtool check rules`` and their unit tests (``promtool test rules``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import RULES_FILE

PROMTOOL_TESTS = Path(__file__).parent / "promtool" / "cost_rules_test.yaml"


def _promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(path).exists():
        pytest.fail("promtool not installed: apt-get install prometheus (see .ci/run)")
    return path


def test_rules_file_is_valid():
    result = subprocess.run([_promtool(), "check", "rules", str(RULES_FILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout


def test_alert_rules_unit_tests():
    result = subprocess.run([_promtool(), "test", "rules", str(PROMTOOL_TESTS)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_required_alert_and_recording_rule_exists():
    import yaml

    rules = [r for g in yaml.safe_load(RULES_FILE.read_text())["groups"] for r in g["rules"]]
    alerts = {r["alert"] for r in rules if "alert" in r}
    records = {r["record"] for r in rules if "record" in r}
    assert alerts == {"GenosynthBudget80Percent", "GenosynthBudgetExceeded", "GenosynthProjectedOverrun",
                      "GenosynthTrainingStalled"}
    assert {"genosynth:cost_dollars:sum", "genosynth:cost_dollars_per_hour:rate15m"} <= records
    assert "predict_linear" in next(r["expr"] for r in rules if r.get("alert") == "GenosynthProjectedOverrun")
