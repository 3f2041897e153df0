"""Device selection: one place that turns the user's ``device`` parameter into a torch device."""

from __future__ import annotations

import torch

from ._validation import fail

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return the torch device for ``device``.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device or None
        ``"auto"`` (and ``None``) pick CUDA when a GPU is present, else the CPU.

    Raises
    ------
    ValueError
        If the name is unknown, or CUDA is asked for on a machine without it.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif isinstance(device, str) and (device == "cpu" or device == "cuda" or device.startswith("cuda:")):
        try:
            dev = torch.device(device)
        except RuntimeError:
            fail("device", "'auto', 'cpu', 'cuda' or 'cuda:N'", device)
    else:
        fail("device", "'auto', 'cpu', 'cuda' or 'cuda:N'", device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        fail("device", "'auto' or 'cpu' on this machine (torch sees no CUDA device)", str(device))
    return dev
