"""The process-pool scaling section of the HTML report: a plot, or a table without matplotlib.

matplotlib is an optional extra (``pip install 'archmatrix[plots]'``): the
report must render on a bare CI runner too, so without it the section is a
small table of the same numbers and says how to get the plot. The plot is
inline SVG, so the page stays one standalone file; it is made with the
object-oriented API (no pyplot, no global backend switch) and a fixed hash
salt and no date, so the same matrix renders to the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from ..speed import BUSY_SHARE, PoolCurve
from .escape import html as escape
from .escape import terminal

INSTALL_HINT = "pip install 'archmatrix[plots]'"
TITLE = "Process-pool scaling (pure-Python math.cos loop)"


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def scaling_svg(curves: Sequence[tuple[str, PoolCurve]]) -> str:
    """Throughput against pool size, one line per lane (absolute, log scale) and the speedup
    over one worker (where the knee shows). Needs matplotlib."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator

    with matplotlib.rc_context({"svg.hashsalt": "archmatrix", "svg.fonttype": "path"}):
        fig = Figure(figsize=(10, 4), layout="constrained")
        absolute, speedup = fig.subplots(1, 2)
        top = max(max(c.sizes) for _, c in curves)
        for lane, curve in curves:
            # a curve measured on a busy host is dashed and gets no recommendation ring
            style = "--" if curve.busy else "-"
            # matplotlib reads $…$ as mathtext: a lane id is shown as it is
            name = terminal(lane).replace("$", r"\$")
            label = f"{name} (busy host)" if curve.busy else name
            (line,) = absolute.plot(curve.sizes, curve.throughput, marker="o", linestyle=style, label=label)
            base = curve.throughput[0]
            speedup.plot(curve.sizes, [t / base for t in curve.throughput], marker="o", linestyle=style,
                         color=line.get_color(), label=label)
            if curve.recommended in curve.sizes and not curve.busy:
                i = curve.sizes.index(curve.recommended)
                # the recommended size, ringed: where to stop adding workers
                absolute.plot([curve.recommended], [curve.throughput[i]], marker="o", markersize=13,
                              markerfacecolor="none", color=line.get_color())
        speedup.plot([1, top], [1, top], linestyle=":", color="grey", label="ideal")
        absolute.set_yscale("log")  # emulated lanes are 10× below native: a linear axis flattens them
        plain = FuncFormatter(lambda value, _pos: f"{value:g}")  # 40, not 4×10¹
        absolute.yaxis.set_major_formatter(plain)
        absolute.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))  # 2, 5, 20, 50: readable
        absolute.yaxis.set_minor_formatter(plain)
        absolute.set(xlabel="pool size (worker processes)", ylabel="throughput (million cos/s)",
                     title="throughput (ring: recommended workers)")
        speedup.set(xlabel="pool size (worker processes)", ylabel="× one worker", title="speedup")
        for ax in (absolute, speedup):
            ax.set_xticks(range(1, top + 1))
            ax.grid(True, alpha=0.3)
        speedup.legend(fontsize="small")
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]  # inline: no XML declaration or DOCTYPE inside HTML


def scaling_table(curves: Sequence[tuple[str, PoolCurve]]) -> str:
    """The same numbers as the plot, as an HTML table (million cos/s per pool size)."""
    top = max(max(c.sizes) for _, c in curves)
    h = ["<table><thead><tr><th>lane \\ pool size</th>"]
    h.extend(f"<th>{p}</th>" for p in range(1, top + 1))
    h.append("<th>recommended</th></tr></thead><tbody>")
    for lane, curve in curves:
        by_size = dict(zip(curve.sizes, curve.throughput, strict=True))
        h.append(f"<tr><th>{escape(lane)}</th>")
        h.extend(f"<td>{by_size[p]:.3g}</td>" if p in by_size else "<td>–</td>" for p in range(1, top + 1))
        recommended = "unclear (busy host)" if curve.busy else curve.recommended
        h.append(f"<td>{recommended if recommended is not None else '–'}</td></tr>")
    h.append("</tbody></table>")
    return "".join(h)


def scaling_section(curves: Sequence[tuple[str, PoolCurve]], *, plots: bool | None = None) -> str:
    """The HTML section for these curves ('' when no lane ran the pool probe).

    ``plots``: None draws the plot when matplotlib is importable; False forces the table.
    """
    if not curves:
        return ""
    h = [f"<h2>{escape(TITLE)}</h2>",
         "<p>Throughput in million loop iterations per second, by number of worker processes. "
         "More workers stop paying at the knee; the recommended count is the fewest workers "
         "within 5 % of the best.</p>"]
    busy = [lane for lane, curve in curves if curve.busy]
    if busy:
        h.append(f"<p class=hint>Measured on a busy host (other lanes ran beside it, so each worker had "
                 f"less than {BUSY_SHARE:.0%} of a CPU): {escape(', '.join(busy))}. These curves understate "
                 "scaling. Run the lanes one at a time (<code>parallel: 1</code>) or one per machine for "
                 "clean curves.</p>")
    if plots is None:
        plots = have_matplotlib()
    if plots:
        h.append(f"<figure class=plot>{scaling_svg(curves)}</figure>")
    else:
        h.append(scaling_table(curves))
        h.append(f"<p class=hint>For a plot, install matplotlib: <code>{escape(INSTALL_HINT)}</code></p>")
    return "".join(h)
