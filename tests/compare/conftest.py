"""Fixtures of the compare tests: one simulated population and two compared runs built from it."""

from __future__ import annotations

import pytest
from compare_cohorts import Population, build_run, simulate_population
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread():
    # The matrices here are small: one BLAS thread is fastest, and it keeps shared CI machines responsive.
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def population() -> Population:
    return simulate_population()


@pytest.fixture(scope="session")
def fresh_run(tmp_path_factory, population) -> str:
    """A run whose synthetic cohort is fresh individuals of the training population, compared once."""
    from genosynth.compare import step

    run_url = build_run(str(tmp_path_factory.mktemp("fresh") / "run"), population, "fresh")
    step.run(run_url)
    return run_url


@pytest.fixture(scope="session")
def copy_run(tmp_path_factory, population) -> str:
    """A run whose 'synthetic' cohort is the training cohort copied, compared once."""
    from genosynth.compare import step

    run_url = build_run(str(tmp_path_factory.mktemp("copy") / "run"), population, "copy")
    step.run(run_url)
    return run_url
