"""Device choice."""

import torch

from genosynth.genetics.device import pick_device


def test_a_requested_device_wins_and_none_picks_what_torch_sees():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device().type == expected
    assert pick_device("").type == expected


def test_torch_threads_sets_the_count_inside_and_restores_it_after_an_error():
    from genosynth.genetics.device import torch_threads

    before = torch.get_num_threads()
    try:
        with torch_threads(1, torch.device("cpu")):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    except RuntimeError:
        pass
    assert torch.get_num_threads() == before
