"""``python -m fastconv bench``: fastconv beside PyTorch, ONNX Runtime and NumPy on the standard
suite.

For each standard case (`fastconv.bench_cases.CONV` and `POOL`), operation (conv forward, dx, dw;
max pooling forward with and without indices, backward) and thread count it times fastconv and
every reference that implements the operation in this one process, alternating between them run
by run (the order rotates each round), after one untimed call of each whose results are checked
against each other. It prints a markdown table: median times, their ratios (fastconv / reference:
< 1 means fastconv is faster), fastconv's GFLOP/s (conv; a gradient counts the forward's FLOPs)
or GB/s (pooling: bytes read + written), and its % of a peak the command measures itself
(`fastconv._bench_peak`: a BLAS GEMM's best rate for conv, a memory copy's for pooling); then
the geometric mean of the time ratios per thread count and the worst row, and optionally a chart
(``--plot``). Progress goes to stderr. Exit status 1 if any result disagreed with a reference.

References: NumPy (conv forward only: im2col + one matmul, its BLAS limited to T threads with
threadpoolctl when installed) always; PyTorch and ONNX Runtime with ``--compare``, each skipped
with a note when it is not installed. The operations themselves are in `fastconv._bench_impls`.
"""
import argparse
import contextlib
import importlib.util
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

import fastconv
from fastconv import _bench_impls as impls
from fastconv import _bench_peak, _config, _runtime
from fastconv._bench_impls import TOLERANCE
from fastconv.bench_cases import CONV, POOL

OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# The machine may be shared: a row during which other processes used more CPU than this is
# measured again (--retries) and flagged C if it stays so; a T >= 2 row whose process used
# fewer CPUs than this is flagged U (the threads did not all run).
FOREIGN_CPU_LIMIT = 0.15
OWN_CPU_MIN_PARALLEL = 1.3
# Seconds of each peak measurement (at the start and, except with --quick, at the end of each
# thread count's rows; the higher figure counts).
PEAK_SECONDS = {"gemm": 0.6, "copy": 0.3}
QUICK_PEAK_SECONDS = {"gemm": 0.03, "copy": 0.01}
BIG_3X3 = ("vgg_conv1_2", "vgg_conv3_2", "vgg_conv5_2")
LABELS = {"fastconv": "ours", "numpy": "NumPy", "torch": "PyTorch", "onnxruntime": "ORT"}


# ---------------------------------------------------------------------------------------------
# Machine state


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _load_average():
    return ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def _busy_cpu_seconds():
    """Seconds of CPU time all processes have used since boot (None where /proc/stat is missing)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class _CpuMeter:
    """CPUs this process and all other processes used while a block of runs went on (None for
    a block shorter than MIN_WALL: /proc/stat counts in 10 ms ticks)."""

    MIN_WALL = 0.25

    def __enter__(self):
        self._wall = time.perf_counter()
        self._own = time.process_time()
        self._busy = _busy_cpu_seconds()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self._wall
        own = time.process_time() - self._own
        busy = _busy_cpu_seconds()
        self.own = own / wall if wall >= self.MIN_WALL else None
        self.foreign = (None if busy is None or self.own is None
                        else max(0.0, (busy - self._busy - own) / wall))
        return False


def _blas_limiter():
    """(context factory taking a thread count, description) for NumPy's BLAS threads."""
    try:
        import threadpoolctl
    except ImportError:
        return None, "not limited (threadpoolctl is not installed: `pip install threadpoolctl`)"
    infos = [info for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"]
    if not infos:
        return None, "no BLAS thread pool found by threadpoolctl"
    described = ", ".join(
        f"{info.get('internal_api')} {info.get('version')} ({info.get('architecture')}, "
        f"default {info.get('num_threads')} threads)" for info in infos)

    def limit(threads):
        return threadpoolctl.threadpool_limits(limits=threads, user_api="blas")

    return limit, f"{described}, limited to T threads with threadpoolctl"


# ---------------------------------------------------------------------------------------------
# Measuring


def _measure(functions, repeat, min_time, max_time):
    """Per-name lists of run times, alternating the functions run by run."""
    names = list(functions)
    times = {name: [] for name in names}

    def done(runs):
        total = sum(runs)
        return ((len(runs) >= repeat and total >= min_time)
                or (len(runs) >= min(repeat, 3) and total >= max_time))

    active, round_ = list(names), 0
    while active:
        shift = round_ % len(active)
        for name in active[shift:] + active[:shift]:
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
        active = [name for name in active if not done(times[name])]
        round_ += 1
    return times


def _row_specs(args):
    """(case, op, algorithm) of every row, in table order; algorithm is None except for conv
    forward rows."""
    specs = []
    ops = [op for group in args.ops for op in impls.OP_GROUPS[group]]
    for name in args.cases:
        if name in CONV:
            for op in impls.CONV_OPS:
                if op not in ops:
                    continue
                for algorithm in (args.algorithms if op == "fwd" else [None]):
                    specs.append((name, op, algorithm))
        else:
            specs.extend((name, op, None) for op in impls.POOL_OPS if op in ops)
    return specs


def _op_label(op, algorithm):
    return op if algorithm in (None, "auto") else f"{op}[{algorithm}]"


def _blas_pause(args, threads):
    """Wait for NumPy's BLAS threads to go idle (see _bench_peak.BLAS_IDLE_SECONDS) when it may
    have run several: T >= 2, or its threads not limited. Not in quick runs."""
    if not args.quick and (threads > 1 or not args.blas_limited):
        time.sleep(_bench_peak.BLAS_IDLE_SECONDS)


def _prepare_row(spec, data, threads, references, args):
    """The timed functions of one row, their untimed first calls checked against each other.
    Returns (functions, error, checked_against, auto algorithm or None)."""
    name, op, algorithm = spec
    ours = impls.fastconv_timed(op, data, algorithm or "auto")
    timed = {"fastconv": ours}
    for reference in references:
        if op in reference.ops:
            made = reference.timed(op, data, threads)
            if made is not None:
                timed[reference.name] = made
    if op == "fwd":  # last: its BLAS threads spin on after it returns
        timed["numpy"] = impls.numpy_fwd_timed(data)
    ours_arrays = ours.arrays(ours.call())
    auto = fastconv.last_algorithm() if op == "fwd" and algorithm == "auto" else None
    error, checked = 0.0, []
    for impl, made in timed.items():
        if impl == "fastconv":
            continue
        error = max(error, impls.relative_error(ours_arrays, made.arrays(made.call())))
        checked.append(LABELS[impl])
    if not checked:  # no reference runs this operation: check against NumPy, untimed
        error = impls.relative_error(ours_arrays, impls.numpy_check(op, data))
        checked.append("np")
    del ours_arrays
    if "numpy" in timed or "np" in checked:
        _blas_pause(args, threads)
    return {impl: made.call for impl, made in timed.items()}, error, checked, auto


def _measure_row(spec, data, threads, functions, args):
    name, op, algorithm = spec
    # NumPy runs in a block of its own after the others, and they wait for its BLAS threads to
    # go idle (see _bench_peak.BLAS_IDLE_SECONDS): alternating with it slowed everything else.
    alternating = {impl: call for impl, call in functions.items() if impl != "numpy"}
    with _CpuMeter() as meter:
        times = _measure(alternating, args.repeat, args.min_time, args.max_time)
        if "numpy" in functions:
            times.update(_measure({"numpy": functions["numpy"]}, args.repeat, args.min_time,
                                  args.max_time))
    if "numpy" in functions:
        _blas_pause(args, threads)
    medians = {impl: statistics.median(runs) for impl, runs in times.items()}
    return {
        "case": name, "op": op, "algorithm": algorithm, "label": _op_label(op, algorithm),
        "kind": data.kind, "threads": threads, "shape": data.case,
        "work": data.flops if data.kind == "conv" else impls.pool_bytes(data.case, op),
        "bytes": (impls.conv_bytes(data.case) if data.kind == "conv"
                  else impls.pool_bytes(data.case, op)),
        "medians": medians, "runs": {impl: len(runs) for impl, runs in times.items()},
        "seconds": sum(sum(runs) for runs in times.values()),
        "own_cpu": meter.own, "foreign_cpu": meter.foreign,
    }


def _rate(row, impl="fastconv"):
    """GFLOP/s (conv) or GB/s (pooling) of one implementation in a row."""
    return row["work"] / row["medians"][impl] / 1e9


def _ratio(row, reference):
    if reference not in row["medians"]:
        return None
    return row["medians"]["fastconv"] / row["medians"][reference]


def _flags(row):
    flags = ""
    if row["foreign_cpu"] is not None and row["foreign_cpu"] > FOREIGN_CPU_LIMIT:
        flags += "C"
    if row["threads"] >= 2 and row["own_cpu"] is not None and row["own_cpu"] < OWN_CPU_MIN_PARALLEL:
        flags += "U"
    return flags


def _measure_peaks(threads, args, limit_blas, torch_module, peaks):
    """Measure the compute and memory ceilings at `threads` threads into peaks[threads], keeping
    the higher of this and any earlier figure."""
    seconds = QUICK_PEAK_SECONDS if args.quick else PEAK_SECONDS
    idle = 0.0 if args.quick else _bench_peak.BLAS_IDLE_SECONDS
    gemm = _bench_peak.gemm_peak(seconds["gemm"], limit_blas, threads, torch_module, idle)
    _blas_pause(args, threads)
    copy = _bench_peak.copy_bandwidth(seconds["copy"], threads, args.quick)
    entry = peaks.setdefault(threads, {"gemm": {}, "copy": 0.0})
    for source, rate in gemm.items():
        entry["gemm"][source] = max(entry["gemm"].get(source, 0.0), rate)
    entry["copy"] = max(entry["copy"], copy)
    entry["compute"] = max(entry["gemm"].values())


def _peak_percent(row, peaks):
    entry = peaks.get(row["threads"])
    if not entry:
        return None
    ceiling = entry["compute"] if row["kind"] == "conv" else entry["copy"]
    return 100.0 * _rate(row) / ceiling if ceiling else None


# ---------------------------------------------------------------------------------------------
# Output


def _format(value):
    """Three significant figures, without a trailing exponent for the sizes seen here."""
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def _format_ms(seconds):
    return "-" if seconds is None else _format(seconds * 1e3)


def _header(args, references, notes, blas_description):
    usable, logical = _usable_cpus(), os.cpu_count()
    lines = [
        "# fastconv bench: fastconv beside " + ", ".join(
            [r.label for r in references] + ["NumPy (conv forward)"]),
        "",
        f"Machine: {_cpu_model()}, {usable} usable CPUs ({logical} logical); "
        f"threads T = {', '.join(map(str, args.threads))}; {args.dtype}; numpy {np.__version__}; "
        f"fastconv {fastconv.__version__}, ISA {fastconv.get_isa()}, "
        f"OpenMP {'on' if _runtime.openmp_enabled() else 'off (T>1 runs serially)'}; "
        f"Python {platform.python_version()}; load average at start {_load_average()}.",
        "fastconv: conv2d(algorithm=" + "/".join(args.algorithms) + ") forward; dx and dw each "
        "alone (the internal drivers of conv2d_backward"
        + ("" if impls.BACKWARD else "; NOT FOUND: conv2d_backward, both gradients, is timed")
        + "); max_pool2d with/without return_indices; max_pool2d_backward (index checks included); "
        "fastconv.set_num_threads(T).",
        f"NumPy reference (conv forward): im2col via sliding_window_view + one matmul; its BLAS: "
        f"{blas_description}.",
    ]
    for reference in references:
        lines.append(f"{reference.label}: {reference.describe()}.")
    for note in notes:
        lines.append(f"Note: {note}.")
    set_variables = [f"{name}={os.environ[name]}" for name in OPENBLAS_VARIABLES
                     if name in os.environ]
    if set_variables:
        lines.append(f"Note: {', '.join(set_variables)} set in the environment: these slow "
                     f"NumPy's OpenBLAS on this kind of machine; left as they are.")
    if args.quick:
        lines.append("QUICK run: shapes shrunk (N=1, <=16 channels and filters, <=32x32), one "
                     "timed run each and brief peak measurements: a smoke test, the figures "
                     "mean nothing.")
    else:
        lines.append(f"Timing: one untimed call each (results checked against each other), then "
                     f"rounds alternating the implementations (rotating order) until each has "
                     f">= {args.repeat} runs and >= {args.min_time:g} s, or >= "
                     f"{min(args.repeat, 3)} runs and >= {args.max_time:g} s; medians. NumPy "
                     f"runs in its own block after the others (same rule), and nothing is timed "
                     f"within {_bench_peak.BLAS_IDLE_SECONDS:g} s after NumPy's BLAS: its idle "
                     f"threads spin that long and, at T=2, halved the speed of whatever ran "
                     f"beside them.")
    lines.append(
        "Columns: 'ms' = median time per call; 'ours/X' = fastconv's median time / X's (< 1: "
        "fastconv faster); 'ours rate' = GFLOP/s for conv (2 FLOPs per multiply-add; dx and dw "
        "count the forward's FLOPs) or GB/s for pooling (bytes read + written at least: float32 "
        "values, int64 indices); '% peak' = of the compute peak (conv) or copy bandwidth "
        "(pooling) measured by this command at the same T (see 'Peaks' below the table); "
        "'max rel err' = largest |ours - reference| / max |reference| over the references of "
        "the row, '(np)' where no reference ran the operation and an untimed NumPy "
        f"computation was the check (MISMATCH above {TOLERANCE[args.dtype]:g}); "
        "'CPU own / other' = CPUs used by this process / by all other processes during the "
        f"timed runs. Flags: C = other processes used > {FOREIGN_CPU_LIMIT} CPUs (after up to "
        f"{args.retries} retries, "
        f"{args.retry_budget:g} s of them at most; the figures are suspect), U = T >= 2 but "
        f"this process used < {OWN_CPU_MIN_PARALLEL} CPUs.")
    return "\n".join(lines)


def _table(rows, references, peaks):
    reference_names = [r.name for r in references]
    has_numpy = any("numpy" in row["medians"] for row in rows)
    columns, aligns = ["case", "op", "T", "GFLOP or MB", "ours ms"], ["---", "---"] + ["---:"] * 3
    for name in reference_names + (["numpy"] if has_numpy else []):
        columns += [f"{LABELS[name]} ms", f"ours/{LABELS[name]}"]
        aligns += ["---:", "---:"]
    columns += ["ours rate", "% peak", "auto", "runs", "max rel err", "CPU own / other", "flags"]
    aligns += ["---:", "---:", "---", "---:", "---:", "---:", "---"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(aligns) + "|"]
    for row in rows:
        own, foreign = (("-" if value is None else f"{value:.2f}")
                        for value in (row["own_cpu"], row["foreign_cpu"]))
        work = (f"{row['work'] / 1e9:.3f}" if row["kind"] == "conv"
                else f"{row['work'] / 1e6:.1f}")
        unit = "GFLOP/s" if row["kind"] == "conv" else "GB/s"
        cells = [row["case"], row["label"], str(row["threads"]), work,
                 _format_ms(row["medians"]["fastconv"])]
        for name in reference_names + (["numpy"] if has_numpy else []):
            ratio = _ratio(row, name)
            cells += [_format_ms(row["medians"].get(name)),
                      "-" if ratio is None else f"{ratio:.2f}"]
        percent = _peak_percent(row, peaks)
        impl_order = ["fastconv"] + [n for n in reference_names + ["numpy"]
                                     if n in row["medians"]]
        cells += [f"{_format(_rate(row))} {unit}",
                  "-" if percent is None else f"{percent:.0f}%",
                  row.get("auto") or "-",
                  " / ".join(str(row["runs"][i]) for i in impl_order),
                  f"{row['error']:.1e}" + (" (np)" if row["checked"] == ["np"] else "")
                  + ("" if row["ok"] else " MISMATCH"),
                  f"{own} / {foreign}", _flags(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _peaks_text(peaks, torch_compared, quick):
    lines = ["Peaks measured by this command (best batch; at the start and the end of each T's "
             "rows, the higher counts):"]
    copy_mib = (_bench_peak.QUICK_COPY_BYTES if quick else _bench_peak.COPY_BYTES) // 2**20
    for threads, entry in sorted(peaks.items()):
        gemm = ", ".join(f"{source} {rate:.0f}" for source, rate in entry["gemm"].items())
        lines.append(f"- T={threads}: compute peak {entry['compute']:.0f} GFLOP/s = best float32 "
                     f"GEMM of a BLAS on in-cache square matrices ({gemm}); copy bandwidth "
                     f"{entry['copy']:.1f} GB/s ({copy_mib} MiB np.copyto on T threads, bytes "
                     f"read + written).")
    lines.append("The compute peak is a BLAS's, a lower bound of the FMA peak (on the reference "
                 "2-vCPU AVX-512 machine an FMA loop in C reached 172 / 343 GFLOP/s at T=1 / 2)"
                 + ("" if torch_compared else "; with --compare torch, torch.mm (MKL) is "
                    "measured too") + ".")
    return "\n".join(lines)


def _primary(row):
    """Rows that make up the suite: every operation once (conv forward: algorithm auto)."""
    return row["algorithm"] in (None, "auto")


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _summary(rows, references, threads_list):
    """Per reference: geometric mean of ours/reference per thread count and overall, worst row."""
    lines = []
    for name in [r.name for r in references] + ["numpy"]:
        parts = []
        for threads in list(threads_list) + [None]:
            selected = [row for row in rows if _primary(row) and name in row["medians"]
                        and (threads is None or row["threads"] == threads)]
            if not selected or (threads is None and len(threads_list) < 2):
                continue
            ratios = [_ratio(row, name) for row in selected]
            worst = max(selected, key=lambda row: _ratio(row, name))
            where = "T=" + ",".join(map(str, threads_list)) if threads is None else f"T={threads}"
            rows_text = f"{len(selected)} row" + ("s" if len(selected) != 1 else "")
            parts.append(f"{where}: geometric mean {_geomean(ratios):.2f} over {rows_text}, "
                         f"worst {_ratio(worst, name):.2f} ({worst['case']} "
                         f"{worst['label']} T={worst['threads']})")
        if parts:
            lines.append(f"Summary time(fastconv)/time({LABELS[name]}): " + "; ".join(parts)
                         + ".")
    return "\n".join(lines)


def _targets(rows, references, peaks):
    """The speed targets, checked where this run has the figures (conv % of peak is of the BLAS
    peak measured here, a lower bound of the FMA peak: the check is lenient)."""
    names = {r.name for r in references}
    rows = [row for row in rows if _primary(row)]
    lines = []

    def verdict(ok):
        return "met" if ok else "NOT met"

    big = [row for row in rows if row["op"] == "fwd" and row["case"] in BIG_3X3]
    for threads, target in ((1, 80), (2, 75)):
        selected = [row for row in big if row["threads"] == threads]
        percents = [_peak_percent(row, peaks) for row in selected]
        if selected and None not in percents:
            low = min(zip(percents, selected), key=lambda pair: pair[0])
            lines.append(f"- Forward on {', '.join(BIG_3X3)} at T={threads}: lowest "
                         f"{low[0]:.0f}% of the measured compute peak ({low[1]['case']}; "
                         f"target >= {target}%): {verdict(low[0] >= target)}.")
    if "torch" in names:
        selected = [row for row in rows if "torch" in row["medians"]]
        if selected:
            mean = _geomean([_ratio(row, "torch") for row in selected])
            worst = max(selected, key=lambda row: _ratio(row, "torch"))
            lines.append(f"- Whole suite, all T: geometric mean ours/PyTorch {mean:.2f} "
                         f"(target <= 0.8): {verdict(mean <= 0.8)}; worst "
                         f"{_ratio(worst, 'torch'):.2f} ({worst['case']} {worst['label']} "
                         f"T={worst['threads']}; target <= 1.25): "
                         f"{verdict(_ratio(worst, 'torch') <= 1.25)}.")
        selected = [row for row in rows if row["op"] == "fwd+idx" and "torch" in row["medians"]]
        if selected:
            worst = max(selected, key=lambda row: _ratio(row, "torch"))
            lines.append(f"- Pooling fwd+idx: highest ours/PyTorch {_ratio(worst, 'torch'):.3f} "
                         f"({worst['case']} T={worst['threads']}; target <= 0.2, 5x faster): "
                         f"{verdict(_ratio(worst, 'torch') <= 0.2)}.")
    if "onnxruntime" in names:
        selected = [row for row in rows
                    if row["op"] == "fwd (no idx)" and "onnxruntime" in row["medians"]]
        if selected:
            worst = max(selected, key=lambda row: _ratio(row, "onnxruntime"))
            lines.append(f"- Pooling fwd (no idx): highest ours/ORT "
                         f"{_ratio(worst, 'onnxruntime'):.2f} ({worst['case']} "
                         f"T={worst['threads']}; target <= 1): "
                         f"{verdict(_ratio(worst, 'onnxruntime') <= 1.0)}.")
    present = [name for name in ("torch", "onnxruntime") if name in names]
    selected = [row for row in rows if row["op"] == "fwd"
                and all(name in row["medians"] for name in present)]
    if present and selected:
        def against_best(row):
            return row["medians"]["fastconv"] / min(row["medians"][n] for n in present)
        worst = max(selected, key=against_best)
        lines.append(f"- Forward: highest ours / faster of "
                     f"{' and '.join(LABELS[n] for n in present)} {against_best(worst):.2f} "
                     f"({worst['case']} T={worst['threads']}; target <= 1.25): "
                     f"{verdict(against_best(worst) <= 1.25)}.")
    if not lines:
        return ""
    return "Targets (where this run has the figures):\n" + "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line


def _comma_list(kind, choices, aliases=None):
    def parse(text):
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"{kind}: give at least one")
        if choices is None:
            try:
                values = [int(item) for item in items]
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{kind} must be comma-separated ints, got {text!r}") from None
            if min(values) < 1:
                raise argparse.ArgumentTypeError(f"{kind} must be >= 1, got {text!r}")
            return values
        items = [(aliases or {}).get(item, item) for item in items]
        unknown = [item for item in items if item not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(unknown)}; choose from {', '.join(choices)}")
        return list(dict.fromkeys(items))
    return parse


def _parser():
    cases = tuple(CONV) + tuple(POOL)
    parser = argparse.ArgumentParser(
        prog="python -m fastconv bench",
        description="Time fastconv on the standard suite (fastconv.bench_cases: conv forward, "
                    "dx, dw; max pooling) beside PyTorch, ONNX Runtime and a NumPy im2col "
                    "reference, in one process, alternating; print a markdown table of times, "
                    "ratios, GFLOP/s or GB/s and % of a measured peak.")
    parser.add_argument("--compare", type=_comma_list("references", impls.REFERENCES,
                                                      {"ort": "onnxruntime"}),
                        default=[], metavar="REF,...",
                        help="references besides NumPy: torch, onnxruntime (default: none; "
                             "one not installed is skipped with a note)")
    parser.add_argument("--threads", type=_comma_list("threads", None), default=[1, 2],
                        metavar="T,...", help="thread counts (default: 1,2)")
    parser.add_argument("--cases", type=_comma_list("cases", cases), default=list(cases),
                        metavar="NAME,...",
                        help=f"cases to run (default: all of {', '.join(cases)})")
    parser.add_argument("--ops", type=_comma_list("ops", tuple(impls.OP_GROUPS)),
                        default=list(impls.OP_GROUPS), metavar="OP,...",
                        help="operations: fwd, dx, dw (conv cases), pool (pooling cases: "
                             "forward with and without indices, backward); default: all")
    parser.add_argument("--algorithms", type=_comma_list("algorithms", impls.FASTCONV_ALGORITHMS),
                        default=["auto"], metavar="A,...",
                        help="fastconv conv2d forward algorithms, each its own row: auto, direct, "
                             "im2col (default: auto; only auto rows enter the summary)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="array dtype (default: float32; ONNX Runtime runs float32 only)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed runs per implementation, at least (default: 5)")
    parser.add_argument("--min-time", type=float, default=0.3,
                        help="seconds of timed runs per implementation, at least (default: 0.3)")
    parser.add_argument("--max-time", type=float, default=1.5,
                        help="stop an implementation once it has this many seconds of timed "
                             "runs and min(repeat, 3) runs, even short of --repeat (default: 1.5)")
    parser.add_argument("--retries", type=int, default=1,
                        help=f"measure a row again, up to this many times, while other "
                             f"processes use > {FOREIGN_CPU_LIMIT} CPUs during it (default: 1)")
    parser.add_argument("--retry-budget", type=float, default=60.0, metavar="SECONDS",
                        help="stop retrying once the retries' timed runs add up to this many "
                             "seconds (on a machine that stays busy every row would be measured "
                             "twice; default: 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="save a chart (needs matplotlib): time ratios per case and "
                             "operation, and GFLOP/s and GB/s against the measured peaks")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: tiny shapes, one timed run each")
    return parser


def _progress(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main(argv=None):
    """Run the benchmark and print its table; returns 0, or 1 if any result disagreed with
    a reference.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments after ``bench`` (default: ``sys.argv[1:]``).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.retry_budget < 0:
        parser.error(f"--retry-budget must be >= 0, got {args.retry_budget}")
    if args.retries < 0:
        parser.error(f"--retries must be >= 0, got {args.retries}")
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    if args.min_time < 0 or args.max_time < 0:
        parser.error("--min-time and --max-time must be >= 0")
    if args.plot:
        try:
            missing = importlib.util.find_spec("matplotlib") is None
        except ValueError:
            missing = True
        if missing:
            parser.error("--plot needs matplotlib, which is not installed "
                         "(`pip install matplotlib`); run again without --plot or install it")
    if args.quick:
        args.repeat, args.min_time, args.max_time, args.retries = 1, 0.0, 0.0, 0
    args.algorithms = [a for a in impls.FASTCONV_ALGORITHMS if a in args.algorithms]
    specs = _row_specs(args)
    if not specs:
        parser.error("no rows: the --ops given apply to none of the --cases given "
                     "(fwd, dx, dw apply to conv cases, pool to pooling cases)")

    references, notes = impls.load_references(args.compare)
    if args.dtype != "float32" and any(r.name == "onnxruntime" for r in references):
        notes.append("onnxruntime runs float32 only: its columns stay empty for float64")
    for note in notes:
        _progress(note)
    torch_module = next((r.torch for r in references if r.name == "torch"), None)
    limit_blas, blas_description = _blas_limiter()
    args.blas_limited = limit_blas is not None
    print(_header(args, references, notes, blas_description), flush=True)
    _progress(f"{len(specs)} rows x T={','.join(map(str, args.threads))}; progress below")

    rows, peaks, data_cache = [], {}, {}
    started = time.perf_counter()
    requested_threads = getattr(_config, "_requested_threads", None)
    count, total, retry_seconds = 0, len(specs) * len(args.threads), 0.0
    try:
        for threads in args.threads:
            fastconv.set_num_threads(threads)
            for reference in references:
                reference.set_threads(threads)
            _measure_peaks(threads, args, limit_blas, torch_module, peaks)
            _progress(f"T={threads}: compute peak {peaks[threads]['compute']:.0f} GFLOP/s, "
                      f"copy {peaks[threads]['copy']:.1f} GB/s")
            with limit_blas(threads) if limit_blas else contextlib.nullcontext():
                for spec in specs:
                    count += 1
                    name, op, algorithm = spec
                    if name not in data_cache:
                        data_cache[name] = impls.make_data(name, args.quick, args.dtype,
                                                           args.seed)
                    data = data_cache[name]
                    functions, error, checked, auto = _prepare_row(spec, data, threads,
                                                                   references, args)
                    row = _measure_row(spec, data, threads, functions, args)
                    for _ in range(args.retries):
                        if "C" not in _flags(row) or retry_seconds >= args.retry_budget:
                            break
                        _progress(f"T={threads} {name} {row['label']}: other processes used "
                                  f"{row['foreign_cpu']:.2f} CPUs; measuring again")
                        retry = _measure_row(spec, data, threads, functions, args)
                        retry_seconds += retry["seconds"]
                        if (retry["foreign_cpu"] is not None
                                and retry["foreign_cpu"] < row["foreign_cpu"]):
                            row = retry
                    row.update(error=error, ok=error <= TOLERANCE[args.dtype], checked=checked,
                               auto=auto)
                    rows.append(row)
                    del functions
                    compared = ", ".join(
                        f"{LABELS[impl]} {_format_ms(row['medians'][impl])} ms "
                        f"({_ratio(row, impl):.2f})"
                        for impl in row["medians"] if impl != "fastconv")
                    unit = "GFLOP/s" if row["kind"] == "conv" else "GB/s"
                    _progress(f"T={threads} [{count}/{total}] {name} {row['label']}: ours "
                              f"{_format_ms(row['medians']['fastconv'])} ms, "
                              f"{_format(_rate(row))} {unit}"
                              + (f"; {compared}" if compared else "")
                              + f" ({row['seconds']:.1f} s timed, "
                              f"{time.perf_counter() - started:.0f} s total)"
                              + ("" if row["ok"] else " MISMATCH"))
            if not args.quick:
                _measure_peaks(threads, args, limit_blas, torch_module, peaks)
    finally:
        fastconv.set_num_threads(requested_threads)
        for reference in references:
            reference.restore()
    data_cache.clear()

    order = {spec: index for index, spec in enumerate(specs)}
    rows.sort(key=lambda row: (args.threads.index(row["threads"]),
                               order[(row["case"], row["op"], row["algorithm"])]))
    print()
    print(_table(rows, references, peaks))
    print()
    print(_peaks_text(peaks, torch_module is not None, args.quick))
    summary = _summary(rows, references, args.threads)
    if summary:
        print()
        print(summary)
    targets = "" if args.quick else _targets(rows, references, peaks)
    if targets:
        print()
        print(targets)
    print(f"\nTotal {time.perf_counter() - started:.0f} s; load average at the end "
          f"{_load_average()}.")
    if args.plot:
        from fastconv import _bench_plot
        try:
            _bench_plot.save(args.plot, rows, references, peaks)
            _progress(f"chart saved to {args.plot}")
        except Exception as error:  # the table is out; a failed chart must not hide it
            print(f"bench: could not save the chart to {args.plot}: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)
    failed = [f"{row['case']} {row['label']} T={row['threads']}" for row in rows if not row["ok"]]
    if failed:
        print(f"MISMATCH against a reference: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
