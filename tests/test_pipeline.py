"""The book pipeline: profiles, overrides, and the source/notebook sync check."""

import re
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest

from csood import params, pipeline

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = pipeline.chapter_names(ROOT)


def test_every_chapter_has_both_profiles():
    assert CHAPTERS, "no chapters found in notebooks/"
    for name in CHAPTERS:
        for profile in pipeline.PROFILES:
            assert (ROOT / "params" / profile / f"{name}.yaml").exists(), (name, profile)


@pytest.mark.parametrize("name", CHAPTERS)
def test_quick_profile_equals_parameters_cell(name):
    """The parameters cell's defaults are the quick profile, so plain papermill and
    `make chapter` agree."""
    assert pipeline.parameters_cell_defaults(name, ROOT) == pipeline.load_profile(name, "quick", ROOT)


@pytest.mark.parametrize("name", CHAPTERS)
@pytest.mark.parametrize("profile", pipeline.PROFILES)
def test_profiles_pass_the_chapter_schema(name, profile):
    values = pipeline.load_profile(name, profile, ROOT)
    assert params.validate(name, **values).keys() == values.keys()


@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_validates_with_its_schema(name):
    """The cell after the parameters calls csood.params.validate for this chapter."""
    nb = jupytext.read(ROOT / "notebooks" / f"{name}.md")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert re.search(rf'validate\(\s*"{name}"', code[1].source)


def test_parse_overrides_types_values_like_yaml():
    got = pipeline.parse_overrides([("seed", "3"), ("lam", "0.1"), ("device", "cpu"), ("grid", "[1, 2]")])
    assert got == {"seed": 3, "lam": 0.1, "device": "cpu", "grid": [1, 2]}


def test_load_profile_rejects_unknown_names():
    with pytest.raises(ValueError, match="chapter must be one of"):
        pipeline.load_profile("no_such_chapter", "quick", ROOT)
    with pytest.raises(ValueError, match="profile must be one of"):
        pipeline.load_profile(CHAPTERS[0], "huge", ROOT)


def _copy_tree(tmp_path):
    for sub in ("notebooks", "book"):
        shutil.copytree(ROOT / sub, tmp_path / sub)
    return tmp_path


def test_check_sync_passes_on_the_committed_book():
    assert pipeline.check_sync(ROOT) == []


def test_check_sync_catches_an_edited_source(tmp_path):
    root = _copy_tree(tmp_path)
    src = root / "notebooks" / f"{CHAPTERS[0]}.md"
    src.write_text(src.read_text() + "\n\nA new paragraph that was never executed.\n")
    problems = pipeline.check_sync(root)
    assert len(problems) == 1 and "differs from" in problems[0]


def test_check_sync_catches_a_missing_or_unexecuted_notebook(tmp_path):
    root = _copy_tree(tmp_path)
    executed = root / "book" / f"{CHAPTERS[0]}.ipynb"
    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count = None
    nbformat.write(nb, executed)
    assert any("never executed" in p for p in pipeline.check_sync(root))
    executed.unlink()
    assert any("is missing" in p for p in pipeline.check_sync(root))
