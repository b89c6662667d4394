"""The chart of ``python -m fastconv bench --plot FILE.png`` (matplotlib, imported only here).

Three panels from one run's rows:

1. time(fastconv) / time(reference) per case and operation, one bar per reference and thread
   count, log scale, a line at 1 (below it fastconv is faster);
2. a roofline of the convolutions: GFLOP/s against arithmetic intensity (FLOPs per byte of x, w
   and y moved once), fastconv filled and PyTorch hollow, under the measured ceilings
   min(compute peak, copy bandwidth x intensity) per thread count;
3. pooling GB/s (bytes read + written) of every implementation beside the measured copy
   bandwidth per thread count.
"""
import matplotlib

LABELS = {"fastconv": "fastconv", "numpy": "NumPy", "torch": "PyTorch", "onnxruntime": "ORT"}
OP_MARKERS = {"fwd": "o", "dx": "^", "dw": "s"}


def _primary(row):
    return row["algorithm"] in (None, "auto")


def _grouped_bars(ax, rows, groups, series, value, label):
    """One bar per (implementation, thread count) in `series` at each (case, operation) of
    `groups`: value(row, implementation), legend label(implementation, threads)."""
    width = 0.8 / len(series)
    cmap = matplotlib.colormaps["tab20"]
    lookup = {(row["case"], row["label"], row["threads"]): row for row in rows}
    for index, (name, t) in enumerate(series):
        xs, ys = [], []
        for position, (case, operation) in enumerate(groups):
            row = lookup.get((case, operation, t))
            if row and name in row["medians"]:
                xs.append(position - 0.4 + (index + 0.5) * width)
                ys.append(value(row, name))
        ax.bar(xs, ys, width, color=cmap(index % 20), label=label(name, t))


def _ratio_panel(ax, rows, references):
    rows = [row for row in rows if _primary(row)]
    groups = list(dict.fromkeys((row["case"], row["label"]) for row in rows))
    threads = sorted({row["threads"] for row in rows})
    names = [name for name in references + ["numpy"]
             if any(name in row["medians"] for row in rows)]
    series = [(name, t) for name in names for t in threads]
    if not series:
        ax.text(0.5, 0.5, "no reference was timed", ha="center", transform=ax.transAxes)
        return
    _grouped_bars(ax, rows, groups, series,
                  lambda row, name: row["medians"]["fastconv"] / row["medians"][name],
                  lambda name, t: f"vs {LABELS[name]}, T={t}")
    ax.axhline(1.0, color="black", linewidth=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{case} {label}" for case, label in groups], rotation=90, fontsize=7)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel("time(fastconv) / time(reference)\n< 1: fastconv faster")
    ax.set_title("Time ratios (medians, same process, alternating runs)")
    ax.legend(fontsize=7, ncol=max(1, len(series) // 2))
    ax.grid(axis="y", which="both", alpha=0.3)


def _roofline_panel(ax, rows, peaks):
    rows = [row for row in rows if _primary(row) and row["kind"] == "conv"]
    if not rows:
        ax.text(0.5, 0.5, "no convolution rows", ha="center", transform=ax.transAxes)
        return
    threads = sorted({row["threads"] for row in rows})
    colors = {t: f"C{i}" for i, t in enumerate(threads)}
    intensities = [row["work"] / row["bytes"] for row in rows]
    low, high = min(intensities) / 2, max(intensities) * 2
    for t in threads:
        entry = peaks.get(t)
        if not entry:
            continue
        xs = [low * (high / low) ** (i / 200) for i in range(201)]
        ax.plot(xs, [min(entry["compute"], entry["copy"] * x) for x in xs], color=colors[t],
                linewidth=1.5, label=f"ceiling T={t}: {entry['compute']:.0f} GFLOP/s, "
                                     f"{entry['copy']:.1f} GB/s")
    for row, intensity in zip(rows, intensities):
        t, marker = row["threads"], OP_MARKERS.get(row["op"], "o")
        ours = row["work"] / row["medians"]["fastconv"] / 1e9
        ax.scatter([intensity], [ours], color=colors[t], marker=marker, s=36, zorder=3)
        if "torch" in row["medians"]:
            theirs = row["work"] / row["medians"]["torch"] / 1e9
            ax.scatter([intensity], [theirs], facecolors="none", edgecolors=colors[t],
                       marker=marker, s=36, zorder=3)
            ax.plot([intensity, intensity], [ours, theirs], color=colors[t], linewidth=0.5,
                    alpha=0.5)
        if t == threads[0]:
            ax.annotate(f"{row['case']} {row['op']}", (intensity, ours), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    for op, marker in OP_MARKERS.items():
        ax.scatter([], [], color="gray", marker=marker, label=f"{op} (filled: fastconv, "
                                                              f"hollow: PyTorch)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per byte of x, w, y)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title("Convolutions against the measured peaks (roofline)")
    ax.legend(fontsize=7)
    ax.grid(which="both", alpha=0.3)


def _pool_panel(ax, rows, peaks, references):
    rows = [row for row in rows if row["kind"] == "pool"]
    if not rows:
        ax.text(0.5, 0.5, "no pooling rows", ha="center", transform=ax.transAxes)
        return
    groups = list(dict.fromkeys((row["case"], row["label"]) for row in rows))
    threads = sorted({row["threads"] for row in rows})
    names = [name for name in ["fastconv"] + references
             if any(name in row["medians"] for row in rows)]
    series = [(name, t) for name in names for t in threads]
    _grouped_bars(ax, rows, groups, series,
                  lambda row, name: row["work"] / row["medians"][name] / 1e9,
                  lambda name, t: f"{LABELS[name]}, T={t}")
    for i, t in enumerate(threads):
        if t in peaks:
            ax.axhline(peaks[t]["copy"], color=f"C{i}", linestyle="--", linewidth=1,
                       label=f"copy bandwidth T={t}")
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{case} {label}" for case, label in groups], rotation=30, fontsize=7,
                       ha="right")
    ax.set_ylabel("GB/s (bytes read + written)")
    ax.set_title("Max pooling against the measured copy bandwidth")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", which="both", alpha=0.3)


def save(path, rows, references, peaks):
    """Save the chart of `rows` (python -m fastconv bench's) to `path`."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [reference.name for reference in references]
    groups = len({(row["case"], row["label"]) for row in rows})
    fig, axes = plt.subplots(3, 1, figsize=(max(10.0, 0.45 * groups + 3), 18),
                             gridspec_kw={"height_ratios": [1.2, 1.2, 0.8]})
    _ratio_panel(axes[0], rows, names)
    _roofline_panel(axes[1], rows, peaks)
    _pool_panel(axes[2], rows, peaks, names)
    fig.suptitle("python -m fastconv bench: fastconv beside "
                 + ", ".join([LABELS[n] for n in names] + ["NumPy"]), fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)
