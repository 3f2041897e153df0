"""The book pipeline: jupytext source -> papermill (with a profile) -> ``book/<chapter>.ipynb``.

Used by ``python -m csood`` and the Makefile. The executed notebook is written atomically,
with papermill's and nbclient's timestamps removed so that re-executing a chapter with the
same parameters changes nothing in git but what the numbers changed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from ._validation import fail

__all__ = [
    "chapter_names",
    "load_profile",
    "parse_overrides",
    "execute_chapter",
    "check_sync",
    "parameters_cell_defaults",
]

PROFILES = ("quick", "paper")
VOLATILE_KEYS = ("start_time", "end_time", "duration")


def _root(root: str | os.PathLike | None) -> Path:
    return Path(root) if root is not None else Path.cwd()


def chapter_names(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the chapters: the stems of ``notebooks/*.md``, sorted."""
    return sorted(p.stem for p in (_root(root) / "notebooks").glob("*.md"))


def _check_chapter(name: str, root: Path) -> None:
    names = chapter_names(root)
    if name not in names:
        fail("chapter", "one of " + ", ".join(names), name)


def load_profile(name: str, profile: str = "quick", root: str | os.PathLike | None = None) -> dict:
    """Read ``params/<profile>/<name>.yaml`` (a flat mapping of parameter values)."""
    import yaml

    root = _root(root)
    _check_chapter(name, root)
    if profile not in PROFILES:
        fail("profile", "one of " + ", ".join(PROFILES), profile)
    path = root / "params" / profile / f"{name}.yaml"
    if not path.exists():
        fail("profile", f"a profile with a parameter file for {name!r} ({path} is missing)", profile)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        fail(str(path), "a flat mapping of parameter names to values", type(data).__name__)
    return data


def parse_overrides(pairs: Iterable[tuple[str, str]]) -> dict:
    """Turn papermill-style ``-p name value`` pairs into typed values (YAML rules: 3 -> int,
    0.1 -> float, [1, 2] -> list, cpu -> str)."""
    import yaml

    return {name: yaml.safe_load(value) for name, value in pairs}


def _strip_volatile(nb, name: str) -> None:
    """Remove timestamps and durations that papermill and nbclient record, and give cells
    stable ids (jupytext and papermill draw random ones), so re-execution is diff-clean.
    Papermill's injected-parameters cell is folded in the book (tag ``hide-cell``)."""
    pm = nb.metadata.get("papermill", {})
    for key in VOLATILE_KEYS:
        pm.pop(key, None)
    pm.pop("input_path", None)
    pm.pop("output_path", None)
    for i, cell in enumerate(nb.cells):
        cell.id = f"{name}-{i}"
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "hide-cell" not in tags:
            tags.append("hide-cell")  # the book shows it folded under the parameters cell
        cell.metadata.pop("execution", None)
        for key in VOLATILE_KEYS:
            cell.metadata.get("papermill", {}).pop(key, None)


def execute_chapter(
    name: str,
    profile: str = "quick",
    overrides: dict[str, Any] | None = None,
    root: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    log_output: bool = False,
) -> Path:
    """Execute one chapter with papermill and write ``book/<name>.ipynb`` atomically.

    Parameters
    ----------
    name : str
        Chapter name (stem of ``notebooks/<name>.md``).
    profile : {"quick", "paper"}
        Parameter file ``params/<profile>/<name>.yaml`` applied first.
    overrides : dict, optional
        Parameter values applied on top of the profile (papermill ``-p``).
    output : path, optional
        Where to write the executed notebook (default ``book/<name>.ipynb``).

    Returns
    -------
    pathlib.Path
        The written notebook.
    """
    import jupytext
    import nbformat
    import papermill

    root = _root(root).resolve()
    params = {**load_profile(name, profile, root), **(overrides or {})}
    nb = jupytext.read(root / "notebooks" / f"{name}.md")
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    out = Path(output) if output is not None else root / "book" / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".ipynb", dir=out.parent, prefix=f".{name}-")
    os.close(fd)
    try:
        executed = papermill.execute_notebook(
            nb, tmp, parameters=params, kernel_name="python3", cwd=str(root / "book"),
            progress_bar=False, log_output=log_output,
        )
        executed.metadata.setdefault("papermill", {})["csood_profile"] = profile
        _strip_volatile(executed, name)
        nbformat.write(executed, tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _cells(nb) -> list[tuple[str, str]]:
    return [
        (c.cell_type, c.source.strip())
        for c in nb.cells
        if "injected-parameters" not in c.metadata.get("tags", [])
    ]


def check_sync(root: str | os.PathLike | None = None) -> list[str]:
    """Compare every ``book/<name>.ipynb`` with its source ``notebooks/<name>.md``.

    Returns a list of problems (empty when every executed notebook holds exactly the cells
    of its source, papermill's injected-parameters cell aside).
    """
    import jupytext
    import nbformat

    root = _root(root)
    problems = []
    for name in chapter_names(root):
        executed = root / "book" / f"{name}.ipynb"
        if not executed.exists():
            problems.append(f"{executed} is missing: run `make chapter NAME={name}`.")
            continue
        nb = nbformat.read(executed, as_version=4)
        src = _cells(jupytext.read(root / "notebooks" / f"{name}.md"))
        out = _cells(nb)
        if src != out:
            first = next((i for i, (a, b) in enumerate(zip(src, out)) if a != b), min(len(src), len(out)))
            problems.append(
                f"{executed} differs from notebooks/{name}.md (first at cell {first}; "
                f"{len(src)} source cells vs {len(out)} executed): re-execute with `make chapter NAME={name}`."
            )
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source.strip() and cell.get("execution_count") is None:
                problems.append(f"{executed} has a code cell that was never executed.")
                break
    return problems


def parameters_cell_defaults(name: str, root: str | os.PathLike | None = None) -> dict:
    """The values assigned in a chapter's ``parameters`` cell (evaluated in isolation)."""
    import jupytext

    nb = jupytext.read(_root(root) / "notebooks" / f"{name}.md")
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"notebooks/{name}.md must have exactly one 'parameters' cell; found {len(cells)}.")
    scope: dict = {}
    exec(compile(cells[0].source, f"{name}:parameters", "exec"), {}, scope)
    return {k: v for k, v in scope.items() if not k.startswith("_")}
