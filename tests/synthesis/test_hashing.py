"""Counter-based random numbers: events as a pure function of their coordinates."""

import numpy as np
import pytest

from genosynth.models.hashing import hash_below, hash_words


@pytest.mark.parametrize("probability", [0.0, 2.0**-40, 0.002, 0.25, 0.5, 0.7071, 1.0])
def test_events_are_the_uniform_numbers_below_the_probability(probability):
    individuals, snps = np.arange(300), np.arange(1000, 1400)
    uniform = (hash_words(7, 11, individuals, snps) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    events = hash_below(7, 11, individuals, snps, probability)
    np.testing.assert_array_equal(events, uniform < probability)
    assert events.mean() == pytest.approx(probability, abs=0.01)


def test_events_depend_only_on_their_coordinates():
    whole = hash_below(3, 11, np.arange(50), np.arange(200), 0.3)
    part = hash_below(3, 11, np.arange(10, 20), np.arange(150, 200), 0.3)
    np.testing.assert_array_equal(part, whole[10:20, 150:200])
    assert not np.array_equal(hash_below(4, 11, np.arange(50), np.arange(200), 0.3), whole)
