"""Draw the paper's report figures with matplotlib from plain data (lists, arrays, dicts): no run store here.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global state,
safe in threads and under any backend); :func:`png_bytes` renders one with Agg. Gene colours are
one per letter (one per gene type) and shared with the terminal alignment of ``pyevonas align``
through :func:`gene_colour`.

Legends name the genes with the names a scoring schema gives them (``Scoring.gene_names()``),
passed in as ``gene_names``: letters mean what the run's own schema says.

Figure numbers refer to the paper: 5 (similarity heatmaps ordered by size), 6/12 (max fitness
and median similarity per generation, one run or bands across seeds), 7 (alignment chart),
8/19 (clustergram), 9 (gene and block frequencies), 17/18 (size and latency), 20 (similar pairs
with a fitness gap).
"""

from __future__ import annotations

import io
import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pyevonas.report._style import DPI, literal_text, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


# One colour per gene type. The paper's Fig. 7 shows the bottleneck block with skip (T) in red and
# the depthwise convolution (D) in green; the rest follow matplotlib's tab20 so close types
# (R/r, T/t, B/I, g/G) get a dark and a light shade of one hue.
GENE_COLOURS: dict[str, str] = {
    "C": "#1f77b4",
    "D": "#2ca02c",
    "B": "#ff7f0e",
    "I": "#ffbb78",
    "L": "#8c564b",
    "M": "#17becf",
    "A": "#9edae5",
    "R": "#9467bd",
    "r": "#c5b0d5",
    "T": "#d62728",
    "t": "#ff9896",
    "g": "#7f7f7f",
    "G": "#c7c7c7",
    "E": "#bcbd22",
    "O": "#e377c2",
    "F": "#393b79",
}
_EXTRA_COLOURS = (
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
    "#6baed6",
    "#fd8d3c",
    "#74c476",
    "#9e9ac8",
    "#969696",
    "#b5cf6b",
    "#e7ba52",
)
GAP_COLOUR = "#ffffff"


def gene_colour(letter: str) -> str:
    """Return the hex colour of a gene letter; letters of other schemas get a stable extra colour."""
    if letter in GENE_COLOURS:
        return GENE_COLOURS[letter]
    if letter == "-":
        return GAP_COLOUR
    return _EXTRA_COLOURS[ord(letter[0]) % len(_EXTRA_COLOURS)]


def text_colour(hex_colour: str) -> str:
    """Black or white: whichever reads better on the background ``hex_colour`` (``#rrggbb``)."""
    r, g, b = (int(hex_colour[k : k + 2], 16) / 255 for k in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


@literal_text
def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    """Render a figure to PNG bytes with the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


#: Colour of the notice on the figures of a simulated run.
SIMULATED_COLOUR = "#b15928"
#: Height (inches) added above a figure without a layout engine to hold the notice.
_NOTICE_BAND = 0.25


@literal_text
def mark_simulated(fig: Figure, notice: str) -> Figure:
    """Write ``notice`` (``simulated with the surrogate of cifar10, not trained``) as the first line
    of the figure's title, so that the figure says so wherever it is copied; returns ``fig``.

    A figure without a layout engine grows at the top by the notice's line, its axes keeping their
    size; one with a layout engine makes room for the longer title itself.
    """
    title = fig.get_suptitle()
    text = notice[:1].upper() + notice[1:]
    if fig.get_layout_engine() is None:
        width, height = fig.get_size_inches()
        grown = height + _NOTICE_BAND
        positions = [(ax, ax.get_position()) for ax in fig.axes]
        fig.set_size_inches(width, grown)
        for ax, pos in positions:
            ax.set_position((pos.x0, pos.y0 * height / grown, pos.width, pos.height * height / grown))
    fig.suptitle(f"{text}\n{title}" if title else text, fontsize=10, color=SIMULATED_COLOUR)
    return fig


def _nan(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


#: A quantity whose positive values span more than this factor is drawn on a log axis.
LOG_SPREAD = 100.0


def log_if_spread(ax: Any, values: Any, axis: Literal["x", "y"] = "y") -> bool:
    """Put ``axis`` on a log scale when the positive finite ``values`` span more than ``LOG_SPREAD``.

    One outlier (an imported latency of ~3,000,000 ms among values of ~2,000) would otherwise
    squash every other value onto the axis. Returns whether the axis is now logarithmic.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 2 or v.max() / v.min() <= LOG_SPREAD:
        return False
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if axis == "y":
        ax.set_yscale("log")
        ax.set_ylabel(f"{ax.get_ylabel()}, log scale")
        target = ax.yaxis
    else:
        ax.set_xscale("log")
        ax.set_xlabel(f"{ax.get_xlabel()}, log scale")
        target = ax.xaxis
    # Plain numbers (1,000 / 1,000,000): the default log labels are mathtext, which figures here
    # draw literally (see pyevonas.report._style.literal_text).
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
    return True


# ------------------------------------------------------------------------------------------
# Fig. 6 (one run) and Fig. 12 (bands across seeds)


def _same_series(a: Sequence[float | None], b: Sequence[float | None], tol: float = 1e-9) -> bool:
    """Whether two series agree wherever both exist (and both exist somewhere)."""
    both = [(x, y) for x, y in zip(a, b, strict=False) if x is not None and y is not None]
    return bool(both) and all(abs(x - y) <= tol for x, y in both)


def window_misses(
    statistic: Sequence[float | None],
    windows: Sequence[tuple[float, float] | None],
    accepted: Sequence[bool | None] | None = None,
) -> list[int]:
    """Positions of the generations whose control statistic fell outside their window.

    The decision the run recorded (``accepted``) wins; where there is none, the statistic is
    checked against the window ``(lo, hi]`` as the control does.
    """
    out = []
    for k, w in enumerate(windows):
        if w is None:
            continue
        decided = None if accepted is None or k >= len(accepted) else accepted[k]
        if decided is None:
            value = statistic[k] if k < len(statistic) else None
            if value is None:
                continue
            decided = w[0] < value <= w[1]
        if not decided:
            out.append(k)
    return out


@literal_text
def fitness_similarity(
    generations: Sequence[int],
    max_fitness: Sequence[float | None],
    median_similarity: Sequence[float | None],
    *,
    control_statistic: Sequence[float | None] | None = None,
    windows: Sequence[tuple[float, float] | None] | None = None,
    accepted: Sequence[bool | None] | None = None,
    title: str = "",
    similarity_label: str = "median similarity",
) -> Figure:
    """Max fitness and median similarity per generation of one run (paper Fig. 6).

    Where the control statistic equals the median similarity (the default schema's runs compare
    the median they report), one line is drawn and its legend names both; otherwise the
    statistic is drawn in another colour, dashed with open squares. Each generation whose
    statistic fell outside its window is marked with a red cross ("outside window").

    Args:
        generations: Generation numbers (x axis).
        max_fitness: Best fitness of each generation (None where nothing trained).
        median_similarity: Median similarity of each generation's matrix.
        control_statistic: The statistic the diversity control compared with its window, if the
            run had control; each window is drawn as a vertical bar.
        windows: The control window ``(lo, hi)`` of each generation (None where there was none).
        accepted: Whether each generation's population was accepted in its window, as the run
            recorded it (None where not recorded: then checked from the statistic).
        title: Figure title.
        similarity_label: Legend label of the median similarity line.
    """
    fig = new_figure(7.0, 5.2)
    ax_f, ax_s = fig.subplots(2, 1, sharex=True)
    x = np.asarray(generations)
    ax_f.plot(x, _nan(max_fitness), "o-", color="#1f77b4", ms=4)
    ax_f.set_ylabel("max fitness")
    ax_f.grid(alpha=0.3)
    has_statistic = control_statistic is not None and any(v is not None for v in control_statistic)
    same = has_statistic and _same_series(median_similarity, control_statistic or [])
    label = f"{similarity_label} = control statistic" if same else similarity_label
    if windows is not None and any(w is not None for w in windows):
        for g, w in zip(x, windows, strict=False):
            if w is not None:
                ax_s.vlines(g, w[0], w[1], color="#2ca02c", lw=5, alpha=0.35)
        ax_s.plot([], [], color="#2ca02c", lw=5, alpha=0.35, label="control window")
    ax_s.plot(x, _nan(median_similarity), "o-", color="#d62728", ms=4, label=label, zorder=3)
    statistic = list(control_statistic) if control_statistic is not None else list(median_similarity)
    if has_statistic and not same:
        ax_s.plot(
            x, _nan(statistic), "s--", color="#6a3d9a", mfc="none", ms=5, lw=1.2, label="control statistic", zorder=4
        )
    misses = window_misses(statistic, windows, accepted) if windows is not None else []
    if misses:
        ys = [statistic[k] if statistic[k] is not None else median_similarity[k] for k in misses]
        ax_s.plot(
            x[misses],
            _nan(ys),
            "x",
            color="#e31a1c",
            ms=9,
            mew=2.2,
            ls="none",
            zorder=5,
            label=f"outside window ({len(misses)})",
        )
    ax_s.set_ylabel("similarity")
    ax_s.set_xlabel("generation")
    ax_s.grid(alpha=0.3)
    # Under the plot, so it never hides a window or a point.
    handles, labels = ax_s.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(handles), 4), fontsize=8, frameon=False)
    _integer_ticks(ax_s, x)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


@dataclass(frozen=True)
class Band:
    """One group of runs (one setting: a dataset, control mode and other settings) summarised across
    seeds per generation.

    ``key`` picks the colour (the same key gets the same colour in every panel: one per control
    mode, or per group label where groups of one control differ in other settings); ``dashed`` draws
    the line dashed (runs of a group shorter than its longest).
    """

    label: str
    generations: list[int]
    values: np.ndarray  # (n_runs, n_generations), NaN where a run has no value
    key: str | None = None
    dashed: bool = False


#: Colours of the control modes in Fig. 12 and 17/18 (other keys take the next free colour).
CONTROL_COLOURS = {"naive": "#1f77b4", "none": "#1f77b4", "rigid": "#d62728", "soft": "#2ca02c"}


def _band_colours(bands: Sequence[Band]) -> list[str]:
    """One colour per key across all panels: control modes keep theirs, others share the rest."""
    free = [c for c in _GROUP_COLOURS if c not in CONTROL_COLOURS.values()]
    extra: dict[str, str] = {}
    out = []
    for k, band in enumerate(bands):
        key = band.key if band.key is not None else f"#{k}"
        if key in CONTROL_COLOURS:
            out.append(CONTROL_COLOURS[key])
            continue
        if key not in extra:
            extra[key] = free[len(extra) % len(free)]
        out.append(extra[key])
    return out


def _draw_band(ax: Any, band: Band, colour: str) -> None:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        med = np.nanmedian(band.values, axis=0)
        lo = np.nanmin(band.values, axis=0)
        hi = np.nanmax(band.values, axis=0)
    x = np.asarray(band.generations)
    n = band.values.shape[0]
    ax.plot(x, med, "--" if band.dashed else "-", color=colour, lw=1.8, label=f"{band.label} (n={n})")
    if n > 1:
        ax.fill_between(x, lo, hi, color=colour, alpha=0.12 if band.dashed else 0.2, lw=0)


_GROUP_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


@literal_text
def grouped_curves(panels: Sequence[tuple[str, Sequence[Band], Sequence[Band]]]) -> Figure:
    """Median and min-max band across seeds of max fitness and median similarity (paper Fig. 12).

    Args:
        panels: One column per dataset: ``(title, fitness bands, similarity bands)``; each band is
            one group of runs (one setting, :class:`Band`).
    """
    return _band_grid(
        panels,
        ("max fitness", "median similarity"),
        legend_loc="lower right",
        suptitle="Median across runs (line) and min-max range (band)",
    )


@literal_text
def grouped_size_latency(panels: Sequence[tuple[str, Sequence[Band], Sequence[Band]]]) -> Figure:
    """Size and latency of each generation's best individual, bands across seeds (paper Fig. 17, 18).

    Args:
        panels: One column per dataset: ``(title, size bands in MB, latency bands in ms)``.
    """
    return _band_grid(
        panels,
        ("size of best (MB)", "latency of best (ms)"),
        legend_loc="best",
        suptitle="Best of each generation: median across runs (line), min-max (band)",
        log_bottom=True,
    )


def _band_grid(
    panels: Sequence[tuple[str, Sequence[Band], Sequence[Band]]],
    ylabels: tuple[str, str],
    legend_loc: str,
    suptitle: str,
    log_bottom: bool = False,
) -> Figure:
    """Two rows of band plots (top and bottom quantity), one column per panel.

    With ``log_bottom``, a bottom panel whose values span more than ``LOG_SPREAD`` is drawn on a
    log axis (:func:`log_if_spread`).
    """
    n = max(len(panels), 1)
    fig = new_figure(max(4.6 * n, 6.4), 5.4)
    axes = np.asarray(fig.subplots(2, n, sharex="col", squeeze=False))
    for col, (title, top_bands, bottom_bands) in enumerate(panels):
        for row, bands in enumerate((top_bands, bottom_bands)):
            for band, colour in zip(bands, _band_colours(bands), strict=True):
                _draw_band(axes[row, col], band, colour)
            axes[row, col].set_ylabel(ylabels[row])
            axes[row, col].grid(alpha=0.3)
        if log_bottom and bottom_bands:
            log_if_spread(axes[1, col], np.concatenate([b.values.ravel() for b in bottom_bands]))
        if top_bands:
            _integer_ticks(axes[1, col], np.asarray(top_bands[0].generations))
        axes[0, col].set_title(title, fontsize=10)
        axes[1, col].set_xlabel("generation")
        axes[0, col].legend(fontsize=8, loc=legend_loc)
    fig.suptitle(suptitle, fontsize=10)
    return fig


def _integer_ticks(ax: Any, x: np.ndarray) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(len(x), 20) or 1))


# ------------------------------------------------------------------------------------------
# Fig. 5


@literal_text
def similarity_heatmaps(matrices: Sequence[tuple[str, np.ndarray]], title: str = "", max_columns: int = 5) -> Figure:
    """A grid of similarity heatmaps, one per generation, colour scale 0..1 (paper Fig. 5).

    Args:
        matrices: ``(panel title, matrix)`` per generation; rows and columns already in the order
            to show (the paper orders them by model size).
        title: Figure title.
        max_columns: Panels per row.
    """
    n = len(matrices)
    cols = max(1, min(max_columns, n))
    rows = max(1, math.ceil(n / cols))
    # A regular grid of tick-less panels: fixed margins, no layout engine (it would measure every
    # panel's title on each draw, the slowest part of a report).
    width, height = 2.2 * cols + 1.0, 2.35 * rows + 0.5
    fig = new_figure(width, height, layout=None)
    fig.subplots_adjust(
        left=0.1 / width, right=1 - 0.95 / width, bottom=0.1 / height, top=1 - 0.55 / height, wspace=0.08, hspace=0.22
    )
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False)).ravel()
    image = None
    for ax, (label, m) in zip(axes, matrices, strict=False):
        image = ax.imshow(m, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest")
        ax.set_title(label, fontsize=8, pad=3)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_axis_off()
    if image is not None:
        cax = fig.add_axes((1 - 0.75 / width, 0.15, 0.15 / width, 0.7))
        fig.colorbar(image, cax=cax, label="similarity")
    fig.suptitle(title or "Population similarity, individuals ordered by model size (small → large)", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------
# Fig. 8 / 19


@literal_text
def clustergram(labels: Sequence[str], matrix: np.ndarray, title: str = "") -> Figure:
    """Hierarchical clustering of individuals by similarity, as a reordered heatmap with dendrograms.

    The similarity can be asymmetric (the ``paper`` schema); clustering uses the symmetric part
    ``(S + S.T) / 2`` and distance ``1 - similarity`` with average linkage; the heatmap shows the
    matrix as given, rows and columns reordered by the dendrogram.

    Args:
        labels: One label per row.
        matrix: Square similarity matrix.
        title: Figure title.
    """
    from scipy.cluster.hierarchy import dendrogram, linkage
    from scipy.spatial.distance import squareform

    m = np.asarray(matrix, dtype=np.float64)
    n = m.shape[0]
    size = min(max(4.0, 0.33 * n + 2.5), 14.0)
    fig = new_figure(size + 1.2, size)
    grid = fig.add_gridspec(2, 3, width_ratios=[1.2, 5, 0.25], height_ratios=[1.2, 5])
    ax_heat = fig.add_subplot(grid[1, 1])
    order = list(range(n))
    if n >= 2:
        sym = (m + m.T) / 2.0
        dist = np.clip(1.0 - sym, 0.0, None)
        np.fill_diagonal(dist, 0.0)
        z = linkage(squareform(dist, checks=False), method="average")
        ax_top = fig.add_subplot(grid[0, 1])
        ax_left = fig.add_subplot(grid[1, 0])
        with warnings.catch_warnings():
            # Identical architectures are all at distance 0: a flat dendrogram, drawn as such.
            warnings.filterwarnings("ignore", "Attempting to set identical", UserWarning)
            info = dendrogram(z, ax=ax_top, no_labels=True, color_threshold=0, above_threshold_color="#444444")
            dendrogram(
                z, ax=ax_left, orientation="left", no_labels=True, color_threshold=0, above_threshold_color="#444444"
            )
        order = [int(k) for k in info["leaves"]]
        ax_left.invert_yaxis()  # dendrogram draws leaf 0 at the bottom; imshow row 0 is at the top
        for ax in (ax_top, ax_left):
            ax.set_axis_off()
    shown = m[np.ix_(order, order)]
    image = ax_heat.imshow(shown, vmin=0.0, vmax=1.0, cmap="viridis", interpolation="nearest", aspect="auto")
    names = [labels[k] for k in order]
    fs = 8 if n <= 25 else 6
    ax_heat.set_xticks(range(n), names, rotation=90, fontsize=fs)
    ax_heat.set_yticks(range(n), names, fontsize=fs)
    ax_heat.yaxis.tick_right()
    if n <= 20:
        for i in range(n):
            for j in range(n):
                v = shown[i, j]
                t = ax_heat.text(
                    j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="black" if v > 0.6 else "white"
                )
                t.set_in_layout(False)
    ax_cb = fig.add_subplot(grid[0, 2])
    fig.colorbar(image, cax=ax_cb)
    fig.suptitle(title or "Hierarchical clustering by similarity", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------
# Fig. 7 and Fig. 20


def _letter_grid(ax: Any, rows: Sequence[str | None], width: int) -> None:
    """Draw rows of coloured gene cells with their letters; ``None`` rows are blank spacers.

    One image for all cells and one line collection for the cell borders keep this fast; the
    letters stay out of the layout computation (hundreds of texts would dominate its cost).
    """
    n = len(rows)
    img = np.ones((n, max(width, 1), 3))
    texts: list[tuple[int, int, str, str]] = []
    for r, letters in enumerate(rows):
        if letters is None:
            continue
        for x, letter in enumerate(letters):
            if letter == "-":
                img[r, x] = (0.94, 0.94, 0.94)
                texts.append((x, r, "-", "#888888"))
                continue
            colour = gene_colour(letter)
            img[r, x] = [int(colour[k : k + 2], 16) / 255 for k in (1, 3, 5)]
            texts.append((x, r, letter, text_colour(colour)))
    ax.imshow(img, extent=(0, max(width, 1), n - 0.5, -0.5), interpolation="nearest", aspect="auto")
    ax.vlines(np.arange(width + 1), -0.5, n - 0.5, colors="white", lw=0.8)
    ax.hlines(np.arange(n + 1) - 0.5, 0, width, colors="white", lw=2.0)
    for x, r, letter, colour in texts:
        t = ax.text(
            x + 0.5, r, letter, ha="center", va="center", fontsize=8, color=colour, family="monospace", weight="bold"
        )
        t.set_in_layout(False)


_LEGEND_ENTRY_WIDTH = 2.0  # inches taken by one "t  BottleneckBlock (no skip)" legend entry


def _legend_columns(fig_width: float) -> int:
    return max(1, int(fig_width / _LEGEND_ENTRY_WIDTH))


def _legend_letters(fig: Figure, letters: set[str], gene_names: Mapping[str, str] | None) -> None:
    """One legend entry per gene type present, in rows under the plot, named by ``gene_names``."""
    from matplotlib.patches import Patch

    names = gene_names or {}
    shown = [k for k in GENE_COLOURS if k in letters] + sorted(letters - set(GENE_COLOURS) - {"-"})
    handles = [Patch(facecolor=gene_colour(k), label=f"{k}  {names.get(k, '')}".rstrip()) for k in shown]
    if handles:
        ncols = min(_legend_columns(fig.get_figwidth()), len(handles))
        fig.legend(handles=handles, loc="outside lower center", ncols=ncols, fontsize=7, frameon=False)


def _legend_height(letters: set[str], fig_width: float) -> float:
    return 0.2 * math.ceil(len(letters - {"-"}) / _legend_columns(fig_width)) + 0.15


@literal_text
def alignment_chart(
    labels: Sequence[str],
    sequences: Sequence[str],
    title: str = "",
    gene_names: Mapping[str, str] | None = None,
) -> Figure:
    """The best individuals' sequences as rows of coloured genes, one colour per gene type (paper Fig. 7).

    Sequences are shown unaligned, as in the paper, left-justified so lengths compare at a glance.

    Args:
        labels: Row labels (e.g. ``G3 · 0.812``).
        sequences: One letter sequence per row.
        title: Figure title.
        gene_names: Legend name of each letter (``Scoring.gene_names()`` of the sequences' schema).
    """
    n = len(sequences)
    width = max((len(s) for s in sequences), default=1)
    letters = set("".join(sequences))
    fig_width = max(min(2.0 + 0.24 * width, 18.0), 7.0)
    fig = new_figure(fig_width, 0.9 + 0.3 * max(n, 1) + _legend_height(letters, fig_width))
    ax = fig.add_subplot(1, 1, 1)
    _letter_grid(ax, list(sequences), width)
    ax.set_xlim(0, width)
    ax.set_ylim(max(n, 1) - 0.5, -0.5)
    ax.set_yticks(range(n), list(labels), fontsize=8)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    _legend_letters(fig, letters, gene_names)
    ax.set_title(title or "Best individuals (unaligned sequences)", fontsize=10)
    return fig


@dataclass(frozen=True)
class AlignedPair:
    """Two aligned sequences (``-`` for gaps) and what to print beside them."""

    label_a: str
    label_b: str
    aligned_a: str
    aligned_b: str
    caption: str


@literal_text
def pair_alignments(
    pairs: Sequence[AlignedPair], title: str = "", gene_names: Mapping[str, str] | None = None
) -> Figure:
    """Pairwise alignments of similar individuals with a large fitness gap (paper Fig. 20).

    Args:
        pairs: The pairs, most similar first; each is drawn as two aligned rows with a caption.
        title: Figure title.
        gene_names: Legend name of each letter (``Scoring.gene_names()`` of the alignment's schema).
    """
    n = max(len(pairs), 1)
    width = max((len(p.aligned_a) for p in pairs), default=1)
    all_letters = set("".join(p.aligned_a + p.aligned_b for p in pairs))
    fig_width = max(min(3.6 + 0.24 * width, 18.0), 7.0)
    fig = new_figure(fig_width, 0.7 + 1.05 * n + _legend_height(all_letters, fig_width))
    ax = fig.add_subplot(1, 1, 1)
    ticks, names = [], []
    letters: set[str] = set()
    grid: list[str | None] = []
    edits_x, edits_y = [], []
    for k, p in enumerate(pairs):
        y = 3 * k
        grid += [p.aligned_a, p.aligned_b, None]
        for x, (a, b) in enumerate(zip(p.aligned_a, p.aligned_b, strict=True)):
            if a != b:  # mark every substitution, insertion and deletion
                edits_x.append(x + 0.5)
                edits_y.append(y + 0.5)
        ax.text(width + 0.3, y + 0.5, p.caption, va="center", fontsize=7)
        ticks += [y, y + 1]
        names += [p.label_a, p.label_b]
        letters |= set(p.aligned_a) | set(p.aligned_b)
    if grid:
        _letter_grid(ax, grid[:-1], width)
    if edits_x:
        ax.plot(edits_x, edits_y, "v", color="black", ms=3, ls="none")
    ax.set_xlim(0, width + 0.2)
    ax.set_ylim(3.0 * n - 1.5, -0.7)
    ax.set_yticks(ticks, names, fontsize=7)
    ax.set_xticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    _legend_letters(fig, letters, gene_names)
    if not pairs:
        ax.text(0.5, 0.5, "no pair passes the thresholds", transform=ax.transAxes, ha="center")
    ax.set_title(title or "Similar pairs with a large fitness gap (▼ = edit)", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------
# Fig. 9


def block_counts(sequences: Sequence[str], k: int) -> Counter[str]:
    """Count every contiguous block of ``k`` genes over all sequences (overlapping occurrences count)."""
    counts: Counter[str] = Counter()
    for seq in sequences:
        for i in range(len(seq) - k + 1):
            counts[seq[i : i + k]] += 1
    return counts


@literal_text
def gene_frequency(sequences: Sequence[str], title: str = "", top: int = 15) -> Figure:
    """Frequency of single genes and of blocks of 2 and 3 genes in a set of sequences (paper Fig. 9).

    Args:
        sequences: The best individuals' letter sequences.
        title: Figure title.
        top: How many of the most frequent entries each panel shows.
    """
    fig = new_figure(11.0, 0.9 + 0.22 * top)
    axes = fig.subplots(1, 3)
    for ax, k in zip(axes, (1, 2, 3), strict=True):
        common = block_counts(sequences, k).most_common(top)
        names = [b for b, _ in common][::-1]
        values = [c for _, c in common][::-1]
        colours = [gene_colour(b[0]) for b in names]
        ax.barh(range(len(names)), values, color=colours)
        ax.set_yticks(range(len(names)), names, family="monospace", fontsize=8)
        ax.set_title(f"{'genes' if k == 1 else f'blocks of {k}'}", fontsize=9)
        ax.set_xlabel("occurrences")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title or "Gene and block frequency among the best individuals", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------
# Fig. 17 / 18 for one run


@literal_text
def size_latency(
    points: Sequence[tuple[int, float, float | None, float | None]],
    best: Sequence[tuple[int, float | None, float | None]],
    title: str = "",
) -> Figure:
    """Size and latency against fitness, and the best individual's size and latency per generation.

    Args:
        points: ``(generation, fitness, size_mb, latency_ms)`` of every trained individual.
        best: ``(generation, size_mb, latency_ms)`` of each generation's best individual.
        title: Figure title.
    """
    fig = new_figure(10.0, 6.6)
    axes = np.asarray(fig.subplots(2, 2))
    gens = np.array([p[0] for p in points], dtype=np.float64)
    fit = np.array([p[1] for p in points], dtype=np.float64)
    size = _nan([p[2] for p in points])
    lat = _nan([p[3] for p in points])
    scatter = None
    for ax, values, label in ((axes[0, 0], size, "size (MB)"), (axes[0, 1], lat, "latency (ms)")):
        ok = ~np.isnan(values)
        if ok.any():
            scatter = ax.scatter(values[ok], fit[ok], c=gens[ok], cmap="viridis", s=12, alpha=0.8)
        else:
            ax.text(0.5, 0.5, "not recorded", transform=ax.transAxes, ha="center")
        ax.set_xlabel(label)
        ax.set_ylabel("fitness")
        ax.grid(alpha=0.3)
    log_if_spread(axes[0, 1], lat, axis="x")  # the original runs' latencies span 4 decades
    if scatter is not None:
        fig.colorbar(scatter, ax=axes[0, :].tolist(), label="generation", shrink=0.9)
    bg = np.array([b[0] for b in best])
    axes[1, 0].plot(bg, _nan([b[1] for b in best]), "o-", color="#9467bd", ms=4)
    axes[1, 0].set_ylabel("size of best (MB)")
    best_latency = _nan([b[2] for b in best])
    axes[1, 1].plot(bg, best_latency, "o-", color="#8c564b", ms=4)
    axes[1, 1].set_ylabel("latency of best (ms)")
    log_if_spread(axes[1, 1], best_latency)
    for ax in axes[1]:
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
        if len(bg):
            _integer_ticks(ax, bg)
    fig.suptitle(title or "Size and latency against fitness", fontsize=10)
    return fig


__all__ = [
    "CONTROL_COLOURS",
    "DPI",
    "GAP_COLOUR",
    "GENE_COLOURS",
    "LOG_SPREAD",
    "SIMULATED_COLOUR",
    "AlignedPair",
    "Band",
    "alignment_chart",
    "block_counts",
    "clustergram",
    "fitness_similarity",
    "gene_colour",
    "gene_frequency",
    "grouped_curves",
    "grouped_size_latency",
    "log_if_spread",
    "mark_simulated",
    "pair_alignments",
    "png_bytes",
    "similarity_heatmaps",
    "size_latency",
    "text_colour",
    "window_misses",
]
