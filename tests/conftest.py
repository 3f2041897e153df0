"""Shared test set-up: one torch thread, and CUDA tests that skip cleanly without a GPU."""

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    """Skip every test marked ``cuda`` when torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    """The test problems are small: one intra-op thread avoids OpenMP barrier costs, which
    grow many-fold when the 2-core machine is shared. Restored afterwards."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)
