"""The report page: every section rendered, every figure present, byte-identical on rerun."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from genosynth import run_layout, storage
from genosynth.errors import InputError
from genosynth.report import step as report_step

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
    banner = report_step._verdict(storage.read_json(run_layout.url(fresh_run, "compare/gate.json")))
    assert banner.startswith('<div class="verdict pass">') and "released" in banner


def test_rerendering_gives_identical_bytes(copy_report, copy_run):
    assert _render(copy_run) == copy_report


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
