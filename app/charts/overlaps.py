"""Overlaps between letters: the pairwise matrix as a heat map (shade = Jaccard index, the
number of common signatories written in each cell) and the exact intersections as an UpSet
chart (a bar per set of letters, the set shown as filled dots below it)."""

from __future__ import annotations

from collections.abc import Mapping

from app.analytics.results import Overlaps
from app.charts.svg import GRID, INK, MUTED, SHADES, clip, document, empty, esc, num, ramp, text

WIDTH = 480
LABEL_WIDTH = 170
UPSET_MAX_COLUMNS = 40


def _label_of(labels: Mapping[str, str], slug: str) -> str:
    return labels.get(slug, slug)


def heatmap_chart(
    result: Overlaps, *, labels: Mapping[str, str], title: str, desc: str, id_prefix: str = "heatmap"
) -> str:
    slugs = result.letters
    n = len(slugs)
    if n < 2:
        return empty(
            title=title, desc=desc, message="Overlaps need two letters or more.", id_prefix=id_prefix
        )
    label_width = LABEL_WIDTH
    # Cells shrink to fit, down to a size that still holds a number; past that the chart widens.
    cell = max(min(64.0, (WIDTH - label_width - 10) / n), 22.0)
    width = max(WIDTH, label_width + n * cell + 10)
    top = 34
    pair = {(p.a, p.b): p for p in result.pairs}
    body: list[str] = []
    for j in range(n):  # column heads: numbers, matching the row labels
        body.append(
            text(label_width + cell * (j + 0.5), top - 10, str(j + 1), size=12, anchor="middle", weight="700")
        )
    for i, row in enumerate(slugs):
        y = top + i * cell
        body.append(
            text(
                label_width - 8,
                y + cell / 2 + 4,
                f"{i + 1}. {clip(_label_of(labels, row), 22)}",
                anchor="end",
            )
        )
        for j, col in enumerate(slugs):
            x = label_width + j * cell
            if i == j:
                value, fraction = result.sizes.get(row, 0), 1.0
                tip = f"{_label_of(labels, row)}: {value} signatories"
            else:
                p = pair.get((row, col)) or pair.get((col, row))
                value = p.common if p else 0
                fraction = p.jaccard if p else 0.0
                tip = (
                    f"{_label_of(labels, row)} and {_label_of(labels, col)}: {value} in common "
                    f"(Jaccard {fraction:.3f})"
                )
            fill = ramp(0.12 + 0.88 * fraction) if fraction > 0 or i == j else ramp(0)
            ink = "#ffffff" if fraction >= 0.45 or i == j else INK
            body.append(
                f'<g class="cell"><title>{esc(tip)}</title>'
                f'<rect x="{num(x)}" y="{num(y)}" width="{num(cell - 2)}" height="{num(cell - 2)}" '
                f'fill="{fill}" stroke="{GRID}"/>'
                + text(
                    x + (cell - 2) / 2,
                    y + (cell - 2) / 2 + 4,
                    str(value),
                    size=12 if cell > 30 else 8,
                    anchor="middle",
                    fill=ink,
                    weight="600",
                )
                + "</g>"
            )
    height = top + n * cell + 30
    body.append(
        text(
            8,
            height - 10,
            "Cells: signatories in common (diagonal: the letter's total). Darker: higher Jaccard index.",
            size=10,
            fill=MUTED,
        )
    )
    return document(width=width, height=height, title=title, desc=desc, body=body, id_prefix=id_prefix)


def upset_chart(
    result: Overlaps, *, labels: Mapping[str, str], title: str, desc: str, id_prefix: str = "upset"
) -> str:
    slugs = result.letters
    groups = result.intersections[:UPSET_MAX_COLUMNS]
    if not groups:
        return empty(
            title=title, desc=desc, message="No signatures recorded on these letters.", id_prefix=id_prefix
        )
    label_width = LABEL_WIDTH
    column = max(min(36.0, (WIDTH - label_width - 10) / len(groups)), 18.0)
    width = max(WIDTH, label_width + column * len(groups) + 10)
    bar_top, bar_height = 20, 150
    matrix_top = bar_top + bar_height + 16
    row = 22
    top_count = max(g.count for g in groups) or 1
    body: list[str] = [
        f'<line x1="{label_width}" y1="{bar_top + bar_height}" x2="{num(label_width + column * len(groups))}" '
        f'y2="{bar_top + bar_height}" stroke="{INK}"/>'
    ]
    for i, slug in enumerate(slugs):
        y = matrix_top + i * row
        if i % 2 == 0:
            body.append(
                f'<rect x="0" y="{num(y - row / 2)}" width="{num(label_width + column * len(groups))}" '
                f'height="{row}" fill="#f0f4f8"/>'
            )
        body.append(
            text(
                label_width - 8,
                y + 4,
                f"{clip(_label_of(labels, slug), 18)} ({result.sizes.get(slug, 0)})",
                anchor="end",
            )
        )
    for k, group in enumerate(groups):
        cx = label_width + column * (k + 0.5)
        h = bar_height * group.count / top_count
        members = set(group.letters)
        names = " + ".join(_label_of(labels, s) for s in group.letters)
        parts = [
            f'<g class="intersection"><title>Only {esc(names)}: {group.count}</title>',
            f'<rect x="{num(cx - column * 0.35)}" y="{num(bar_top + bar_height - h)}" '
            f'width="{num(column * 0.7)}" height="{num(max(h, 1))}" fill="{SHADES[0]}"/>',
            text(
                cx,
                bar_top + bar_height - h - 4,
                str(group.count),
                size=11 if column > 24 else 8,
                anchor="middle",
                weight="600",
            ),
        ]
        rows_in = [i for i, s in enumerate(slugs) if s in members]
        if len(rows_in) > 1:
            parts.append(
                f'<line x1="{num(cx)}" y1="{num(matrix_top + min(rows_in) * row)}" x2="{num(cx)}" '
                f'y2="{num(matrix_top + max(rows_in) * row)}" stroke="{SHADES[0]}" stroke-width="3"/>'
            )
        for i, slug in enumerate(slugs):
            filled = slug in members
            parts.append(
                f'<circle cx="{num(cx)}" cy="{num(matrix_top + i * row)}" r="{num(min(7, column * 0.3))}" '
                f'fill="{SHADES[0] if filled else "#ffffff"}" stroke="{SHADES[0] if filled else "#9fb3c8"}"/>'
            )
        parts.append("</g>")
        body.append("".join(parts))
    height = matrix_top + len(slugs) * row + 16
    if len(result.intersections) > len(groups):
        body.append(
            text(
                label_width,
                height,
                f"The {len(groups)} largest of {len(result.intersections)} intersections.",
                size=10,
                fill=MUTED,
            )
        )
        height += 14
    return document(width=width, height=height, title=title, desc=desc, body=body, id_prefix=id_prefix)
