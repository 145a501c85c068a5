"""The typed records of compare/metrics.json, gate.json and release.json: one reader and writer."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys

import pytest

from genosynth import compare_records, run_layout, storage
from genosynth.compare_records import CompareMetrics
from genosynth.errors import InputError

KEYS = (run_layout.COMPARE_METRICS, run_layout.COMPARE_GATE, run_layout.COMPARE_RELEASE)


@pytest.fixture
def run_copy(tmp_path, copy_run) -> str:
    run_url = str(tmp_path / "run")
    shutil.copytree(copy_run, run_url, ignore=shutil.ignore_patterns("report"))
    return run_url


def test_reading_and_writing_back_reproduces_every_byte(copy_run, tmp_path):
    out = str(tmp_path / "out")
    compare_records.write_metrics(out, compare_records.read_metrics(copy_run))
    compare_records.write_gate(out, compare_records.read_gate(copy_run))
    compare_records.write_release(out, compare_records.read_release(copy_run))
    for key in KEYS:
        written, original = (storage.read_bytes(run_layout.url(run, key)) for run in (out, copy_run))
        assert written == original, key


def test_the_records_are_typed(copy_run):
    metrics = compare_records.read_metrics(copy_run)
    assert metrics.schema_version == compare_records.METRICS_SCHEMA
    assert metrics.cohorts.traits == ["trait_a", "trait_b"]
    hits = metrics.association["trait_a"].thresholds["1e-8"]
    assert isinstance(hits.hits_real, int) and hits.f1 == 1.0
    assert metrics.privacy.identical_genomes == metrics.cohorts.synthetic_samples
    assert metrics.privacy.dcr_synthetic_to_train.q0_5 == 0.0
    categorical = [c for c in metrics.phenotypes.columns.values() if c.kind == "categorical"]
    numeric = [c for c in metrics.phenotypes.columns.values() if c.kind != "categorical"]
    assert all(c.mean_real is None and c.total_variation is not None for c in categorical)
    assert all(c.total_variation is None and c.sd_real is not None for c in numeric)
    gate = compare_records.read_gate(copy_run)
    assert not gate.passed and gate.checks[0].metric == "identical_genomes"
    assert compare_records.is_released(copy_run) is False


def test_null_in_the_file_is_nan_in_memory_and_null_again_when_written(copy_run):
    document = storage.read_json(run_layout.url(copy_run, run_layout.COMPARE_METRICS))
    document["association"]["trait_a"]["neglog10p_correlation"] = None
    metrics = CompareMetrics.from_values(document)
    assert math.isnan(metrics.association["trait_a"].neglog10p_correlation)
    assert compare_records.clean_json(metrics)["association"]["trait_a"]["neglog10p_correlation"] is None


def test_a_key_no_record_declares_is_refused_naming_it(copy_run):
    document = storage.read_json(run_layout.url(copy_run, run_layout.COMPARE_METRICS))
    document["association"]["trait_a"]["new_metric"] = 1.0
    with pytest.raises(InputError, match=r"association\.trait_a\.new_metric.*compare_records\.py"):
        CompareMetrics.from_values(document)


def test_a_missing_or_mistyped_field_is_one_error_naming_it(run_copy):
    url = run_layout.url(run_copy, run_layout.COMPARE_METRICS)
    document = storage.read_json(url)
    del document["privacy"]["aats"]
    storage.write_json(url, document)
    with pytest.raises(InputError, match=r"column 'privacy\.aats': not a CompareMetrics record: field req"):
        compare_records.read_metrics(run_copy)
    document["privacy"]["aats"] = "high"
    storage.write_json(url, document)
    with pytest.raises(InputError, match=r"privacy\.aats.*found 'high'"):
        compare_records.read_metrics(run_copy)


def test_gate_and_release_files_written_before_versioning_read_as_version_1(run_copy):
    for key in (run_layout.COMPARE_GATE, run_layout.COMPARE_RELEASE):
        url = run_layout.url(run_copy, key)
        document = storage.read_json(url)
        del document["schema_version"]
        storage.write_json(url, document)
    assert not compare_records.read_gate(run_copy).passed
    assert compare_records.read_release(run_copy).released is False
    url = run_layout.url(run_copy, run_layout.COMPARE_GATE)
    storage.write_json(url, {**storage.read_json(url), "schema_version": 2})
    with pytest.raises(InputError, match="schema_version 1 expected, found 2"):
        compare_records.read_gate(run_copy)


def test_the_report_step_on_a_foreign_metrics_file_exits_2_with_one_line(run_copy):
    url = run_layout.url(run_copy, run_layout.COMPARE_METRICS)
    storage.write_json(url, {**storage.read_json(url), "schema_version": 0})
    done = subprocess.run([sys.executable, "-m", "genosynth", "step", "report", "--run", run_copy],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "metrics.json" in lines[0] and "schema_version 1 expected, found 0" in lines[0]
