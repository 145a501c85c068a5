"""Device choice."""

import torch

from genosynth.genetics.device import pick_device


def test_a_requested_device_wins_and_none_picks_what_torch_sees():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected
    assert pick_device("").type == expected
