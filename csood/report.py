"""Small helpers that turn computed numbers into what a chapter shows: tables and glue values."""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["markdown_table", "rounded"]


def rounded(x: Any, digits: int = 3) -> Any:
    """``x`` as a plain Python float rounded to ``digits`` (ints and strings pass through).

    Chapters glue rounded plain floats so that stored outputs are reproducible to the digit.
    """
    if isinstance(x, (bool, int, str)):
        return x
    return round(float(x), digits)


def markdown_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], *, floatfmt: str = ".3f"):
    """A table for a notebook cell, rendered by the book as HTML.

    Parameters
    ----------
    rows : sequence of sequences
        One inner sequence per row; floats are formatted with ``floatfmt``.
    headers : sequence of str
        Column headers.

    Returns
    -------
    IPython.display.Markdown
    """
    from IPython.display import Markdown

    def cell(v):
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines))
