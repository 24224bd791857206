"""How tables look, and which colour each training state has: the one table helper (HTML and text) and the
one state palette every view uses. Depends on nothing else in the package."""

from __future__ import annotations

import html

# one colour per training state: cards, curves and overlays use these
STATE_COLORS = {"failed": "#c62828", "underfitting": "#ef6c00", "overfitting": "#6a1b9a",
                "converged": "#2e7d32", "unknown": "#616161"}


class Html(str):
    """A string Jupyter shows as HTML (and a terminal as the text it holds)."""

    def _repr_html_(self) -> str:
        return str(self)


def table(rows, header=None, raw: bool = False, style: str = "") -> str:
    """An HTML table; cells are escaped unless `raw` (cells already HTML)."""
    cell = (lambda c: str(c)) if raw else (lambda c: html.escape(str(c)))
    head = "<tr>" + "".join(f"<th>{cell(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    attrs = f" style='{style}'" if style else ""
    return f"<table{attrs}>{head}{body}</table>"


def text_table(rows, header=None) -> str:
    """Columns padded to their widest cell: the first left-aligned, the others right-aligned."""
    rows = [list(map(str, r)) for r in ([header] if header else []) + list(rows)]
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows), default=0))]
    return "\n".join("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)).rstrip()
                     for r in rows)


def badge(state: str) -> str:
    color = STATE_COLORS.get(state, STATE_COLORS["unknown"])
    return (f"<span style='background:{color};color:#fff;padding:2px 10px;border-radius:10px;"
            f"font-weight:bold'>{html.escape(state)}</span>")
