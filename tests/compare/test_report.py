"""The report page: every section rendered, every figure present, byte-identical on rerun."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from genosynth import compare_records, run_layout, storage
from genosynth.errors import InputError
from genosynth.report import step as report_step
from genosynth.run_config import RunConfig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _render(run_url: str) -> tuple[str, dict[str, bytes]]:
    report_step.run(run_url)
    base = run_layout.url(run_url, run_layout.REPORT)
    html = storage.read_text(storage.join(base, "index.html"))
    pngs = {name: storage.read_bytes(storage.join(base, name)) for name in storage.list_keys(base)
            if name.endswith(".png")}
    return html, pngs


@pytest.fixture(scope="module")
def copy_report(copy_run):
    return _render(copy_run)


def test_every_section_and_figure_is_rendered(copy_report, copy_run):
    html, pngs = copy_report
    for anchor in ("association", "structure", "phenotypes", "privacy", "definitions"):
        assert f'<section id="{anchor}">' in html
    expected = {"manhattan_trait_a.png", "manhattan_trait_b.png", "qq_trait_a.png", "qq_trait_b.png",
                "allele_frequency.png", "ld_decay.png", "pca.png", "phenotype_correlations.png",
                "kinship.png", "privacy_distances.png", "privacy_kinship.png"}
    assert expected <= set(pngs)
    linked = set(re.findall(r'<img src="([^"]+)"', html))
    assert linked == set(pngs)  # every link resolves, nothing is orphaned
    assert all(png.startswith(PNG_MAGIC) and len(png) > 5_000 for png in pngs.values())
    assert "http://" not in html and "https://" not in html  # self-contained
    assert copy_run not in html  # no local paths leak into the page


def test_the_metrics_tables_show_the_numbers(copy_report, copy_run):
    html, _ = copy_report
    metrics = storage.read_json(run_layout.url(copy_run, run_layout.COMPARE_METRICS))
    hits = metrics["association"]["trait_a"]["thresholds"]["1e-8"]
    assert f"<td>{hits['hits_real']}</td><td>{hits['hits_synthetic']}</td>" in html
    assert "membership-inference AUC" in html and "λGC" in html


def test_a_failed_gate_is_the_first_thing_on_the_page(copy_report):
    html, _ = copy_report
    body = html.split("<main>", 1)[1]
    assert body.startswith('<div class="verdict fail">')
    assert "Privacy gate FAILED" in body and "identical genomes" in body


def test_a_passed_gate_says_the_cohort_is_released(fresh_run):
    released = compare_records.is_released(fresh_run)
    banner = report_step._verdict(compare_records.read_gate(fresh_run), released)
    assert banner.startswith('<div class="verdict pass">') and "released" in banner


def test_rerendering_gives_identical_bytes(copy_report, copy_run):
    assert _render(copy_run) == copy_report


SCRIPT = "<script>alert(1)</script>"


def test_names_from_the_run_are_escaped_in_the_page(tmp_path, copy_run):
    """A trait named like markup shows as text in headings, captions, cards and alt text, never as HTML."""
    run_url = str(tmp_path / "run")
    shutil.copytree(copy_run, run_url, ignore=shutil.ignore_patterns("report"))
    trait = f"a{SCRIPT}"
    for key in (run_layout.GWAS_REAL, run_layout.GWAS_SYNTHETIC):
        url = run_layout.url(run_url, key)
        table = pd.read_parquet(io.BytesIO(storage.read_bytes(url)))
        table["trait"] = table["trait"].replace("trait_a", trait)
        table.to_parquet(url, index=False)
    metrics_url = run_layout.url(run_url, run_layout.COMPARE_METRICS)
    metrics = storage.read_json(metrics_url)
    metrics["association"][trait] = metrics["association"].pop("trait_a")
    storage.write_json(metrics_url, metrics)
    config = RunConfig.load(run_url)
    config.dataset_url = f"memory://{SCRIPT}"
    config.save(run_url)
    html, pngs = _render(run_url)
    assert "<script" not in html
    escaped = "a&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<h3>{escaped} <small>" in html  # heading
    assert f"<figcaption>{escaped}: real -log10 p above the axis" in html  # caption
    assert f'alt="Mirrored Manhattan plot of {escaped}"' in html  # attribute
    assert f'<div class="label">{escaped}: F1 at 1e-8</div>' in html  # card
    assert "<code>memory://&lt;script&gt;alert(1)&lt;/script&gt;</code>" in html  # subtitle
    assert "manhattan_a_script_alert_1_script.png" in pngs


def test_a_metrics_file_of_another_schema_version_is_one_clear_error(tmp_path, copy_run):
    run_url = str(tmp_path / "run")
    shutil.copytree(copy_run, run_url, ignore=shutil.ignore_patterns("report"))
    metrics_url = run_layout.url(run_url, run_layout.COMPARE_METRICS)
    metrics = storage.read_json(metrics_url)
    storage.write_json(metrics_url, {**metrics, "schema_version": 99})
    with pytest.raises(InputError, match="schema_version 1 expected, found 99") as raised:
        report_step.run(run_url)
    assert str(raised.value).startswith(metrics_url) and "\n" not in str(raised.value)
    del metrics["schema_version"]
    storage.write_json(metrics_url, metrics)
    with pytest.raises(InputError, match="schema_version 1 expected, found None"):
        report_step.run(run_url)
    assert not storage.exists(run_layout.url(run_url, run_layout.REPORT, "index.html"))


def test_report_before_compare_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="run the compare step first"):
        report_step.run(str(tmp_path))


def test_the_step_command_runs_compare(tmp_path, copy_run):
    run_url = str(tmp_path / "run")
    shutil.copytree(copy_run, run_url, ignore=shutil.ignore_patterns("compare", "report"))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "genosynth", "step", "compare", "--run", run_url],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert not storage.read_json(run_layout.url(run_url, "compare/gate.json"))["passed"]
    assert storage.read_json(run_layout.url(run_url, run_layout.COMPARE_RELEASE))["released"] is False
