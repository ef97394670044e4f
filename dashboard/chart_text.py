"""Text of ours inside a Plotly chart (issue 20 item 12).

Plotly renders a subset of HTML in the text of a figure — legends, hover labels, titles,
annotations, tick labels: ``<a href>``, ``<b>``, ``<br>``, ``<span style>`` … So a device named
``<a href="https://…">`` became a live link in the gate chart's legend. Tables are safe (Dash
sets their text as text); a chart's text is escaped here, so Plotly shows it as written. Every
name, label or title a chart in ``dashboard/`` shows goes through :func:`chart_text` — the one
place (``tests/test_chart_text.py`` holds each chart to it)."""

from __future__ import annotations

import html


def chart_text(text: object) -> str:
    """``text`` as Plotly shows it literally: ``<``, ``>`` and ``&`` as entities (Plotly turns
    entities back into characters only after it has parsed its tags)."""
    return html.escape(str(text), quote=False)
