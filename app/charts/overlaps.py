"""Overlaps between letters: the pairwise matrix as a heat map (shade = Jaccard index, the
number of common signatories written in each cell) and the exact intersections as an UpSet
chart (a bar per set of letters, the set shown as filled dots below it)."""

from __future__ import annotations

from collections.abc import Mapping

from app.analytics.results import Overlaps
from app.charts.svg import INK, MUTED, SHADES, Text, clip, document, empty, ramp

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
    heads = [  # column heads: numbers, matching the row labels
        Text(label_width + cell * (j + 0.5), top - 10, str(j + 1), size=12, anchor="middle", weight="700")
        for j in range(n)
    ]
    rows = []
    for i, row in enumerate(slugs):
        y = top + i * cell
        cells = []
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
            cells.append(
                {
                    "tip": tip,
                    "x": x,
                    "y": y,
                    "fill": ramp(0.12 + 0.88 * fraction) if fraction > 0 or i == j else ramp(0),
                    "value": Text(
                        x + (cell - 2) / 2,
                        y + (cell - 2) / 2 + 4,
                        str(value),
                        size=12 if cell > 30 else 8,
                        anchor="middle",
                        fill="#ffffff" if fraction >= 0.45 or i == j else INK,
                        weight="600",
                    ),
                }
            )
        name = Text(
            label_width - 8, y + cell / 2 + 4, f"{i + 1}. {clip(_label_of(labels, row), 22)}", anchor="end"
        )
        rows.append({"name": name, "cells": cells})
    height = top + n * cell + 30
    key = Text(
        8,
        height - 10,
        "Cells: in common (diagonal: the letter's total). Darker: higher Jaccard index.",
        size=11,
        fill=MUTED,
    )
    return document(
        "heatmap.svg",
        width=width,
        height=height,
        title=title,
        desc=desc,
        id_prefix=id_prefix,
        heads=heads,
        rows=rows,
        cell_size=cell - 2,
        key=key,
    )


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
    rows = [
        {
            "stripe": matrix_top + i * row - row / 2 if i % 2 == 0 else None,  # a band behind every other row
            "name": Text(
                label_width - 8,
                matrix_top + i * row + 4,
                f"{clip(_label_of(labels, slug), 18)} ({result.sizes.get(slug, 0)})",
                anchor="end",
            ),
        }
        for i, slug in enumerate(slugs)
    ]
    columns = []
    for k, group in enumerate(groups):
        cx = label_width + column * (k + 0.5)
        h = bar_height * group.count / top_count
        members = set(group.letters)
        rows_in = [i for i, s in enumerate(slugs) if s in members]
        columns.append(
            {
                "title": f"Only {' + '.join(_label_of(labels, s) for s in group.letters)}: {group.count}",
                "x": cx,
                "bar_x": cx - column * 0.35,
                "bar_y": bar_top + bar_height - h,
                "bar_height": max(h, 1),
                "count": Text(
                    cx,
                    bar_top + bar_height - h - 4,
                    str(group.count),
                    size=11 if column > 24 else 8,
                    anchor="middle",
                    weight="600",
                ),
                # the line joining the dots of the letters in the set, when there are two or more
                "join": (matrix_top + min(rows_in) * row, matrix_top + max(rows_in) * row)
                if len(rows_in) > 1
                else None,
                "dots": [(matrix_top + i * row, slug in members) for i, slug in enumerate(slugs)],
            }
        )
    height = matrix_top + len(slugs) * row + 16
    note = None
    if len(result.intersections) > len(groups):
        note = Text(
            label_width,
            height,
            f"The {len(groups)} largest of {len(result.intersections)} intersections.",
            size=11,
            fill=MUTED,
        )
        height += 14
    return document(
        "upset.svg",
        width=width,
        height=height,
        title=title,
        desc=desc,
        id_prefix=id_prefix,
        label_width=label_width,
        matrix_width=label_width + column * len(groups),
        axis_y=bar_top + bar_height,
        row_height=row,
        bar_width=column * 0.7,
        dot_radius=min(7, column * 0.3),
        ink_fill=SHADES[0],
        empty_stroke="#9fb3c8",
        rows=rows,
        columns=columns,
        note=note,
    )
