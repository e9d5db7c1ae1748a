"""The /stats chart: requests received per month (bars stacked by type) and the on-time share
(a line), as one PNG.

It is drawn with matplotlib's Agg backend (no display needed). matplotlib is imported inside
`render_chart` only, so the bot starts, and runs when nobody asks for statistics, without
loading it."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from bot.core.i18n import Translator
from bot.domain.stats import Stats
from bot.telegram.texts.stats import month_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def draw_chart(
    stats: Stats, labels: dict[str, str], x_labels: list[str], type_names: dict[str, str]
) -> Figure:
    """The figure: bars of requests received per month (stacked by type) and a line of the
    on-time share; the legend below the axes, in a band of its own, so it hides no bar or
    point however high the first month's bar is. The caller closes it (`plt.close`)."""
    import matplotlib  # heavy: loaded only when statistics are asked for

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    positions = list(range(len(stats.months)))
    figure, bars = plt.subplots(figsize=(8, 5), dpi=100, layout="constrained")
    bottom = [0] * len(stats.months)
    for kind in sorted(stats.received_by_type):
        heights = [stats.received[m][kind] for m in stats.months]
        bars.bar(positions, heights, bottom=bottom, label=type_names.get(kind, kind))
        bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
    bars.set_xticks(positions, x_labels)
    bars.set_ylabel(labels["received"])
    bars.yaxis.get_major_locator().set_params(integer=True)
    share = bars.twinx()
    values = [stats.on_time_by_month.get(m) for m in stats.months]
    share.plot(
        [p for p, v in zip(positions, values, strict=True) if v is not None],
        [v * 100 for v in values if v is not None],
        color="black",
        marker="o",
        label=labels["on_time"],
    )
    share.set_ylim(0, 105)
    share.set_ylabel(labels["on_time"])
    bars.set_title(labels["title"])
    handles, names = bars.get_legend_handles_labels()
    more, more_names = share.get_legend_handles_labels()
    if handles or more:
        # "outside": constrained layout gives the legend its own band under the axes.
        figure.legend(
            handles + more,
            names + more_names,
            loc="outside lower center",
            ncols=min(4, len(handles) + len(more)),
            fontsize="small",
        )
    return figure


def render_chart(
    stats: Stats, labels: dict[str, str], x_labels: list[str], type_names: dict[str, str]
) -> bytes:
    """The chart as a PNG."""
    figure = draw_chart(stats, labels, x_labels, type_names)
    from matplotlib import pyplot as plt  # loaded (with the Agg backend) by draw_chart

    try:
        output = io.BytesIO()
        figure.savefig(output, format="png")
        return output.getvalue()
    finally:
        plt.close(figure)


def chart_png(stats: Stats, t: Translator) -> bytes:
    labels = {
        "title": t("stats.chart_title"),
        "received": t("stats.chart_received"),
        "on_time": t("stats.chart_on_time"),
    }
    x_labels = [month_label(m, t) for m in stats.months]
    type_names = {kind: t(f"rights.{kind}") for kind in stats.received_by_type}
    return render_chart(stats, labels, x_labels, type_names)
