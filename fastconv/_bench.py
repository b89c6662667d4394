"""``python -m fastconv bench``: fastconv's conv2d algorithms beside a NumPy im2col reference.

For each standard layer shape (`fastconv.bench_cases.CONV`) and thread count it times every
fastconv algorithm and the NumPy reference in this one process, alternating between them run by
run (the order rotates each round), and prints a markdown table of median GFLOP/s, the ratio of
each fastconv time to the NumPy time, and the algorithm ``algorithm="auto"`` picks. Progress goes
to stderr, the table to stdout. The NumPy reference's BLAS is limited to the same thread count with
threadpoolctl when it is installed; the header says when it is not.
"""
import argparse
import contextlib
import os
import platform
import statistics
import sys
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import fastconv
from fastconv import _config, _runtime
from fastconv.bench_cases import CONV, conv_flops, conv_output_shape

ALGORITHMS = ("direct", "im2col")
REFERENCE = "numpy"
# A fastconv result further than this from the NumPy result, relative to the largest output,
# marks the row MISMATCH and makes the command exit 1 (float32 sums of up to 25088 products
# differ by ~1e-6 between summation orders).
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}
OPENBLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# The machine may be shared: a case during which other processes used more CPU than this is
# measured again (--retries) and flagged C if it stays so; a T >= 2 case whose process used
# fewer CPUs than this is flagged U (the threads did not all run).
FOREIGN_CPU_LIMIT = 0.15
OWN_CPU_MIN_PARALLEL = 1.3


def numpy_conv2d_im2col(x, w, stride, padding, dilation):
    """conv2d (cross-correlation, NCHW) in plain NumPy: an im2col matrix built from a strided
    window view, multiplied with the filters by one BLAS GEMM.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    w : ndarray, shape (K, C, F, F)
    stride, padding, dilation : int

    Returns
    -------
    y : ndarray, shape (N, K, HO, WO), C-contiguous, dtype of `x`.
    """
    K, C, F, _ = w.shape
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    extent = dilation * (F - 1) + 1
    windows = sliding_window_view(x, (extent, extent), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride, ::dilation, ::dilation]  # N, C, HO, WO, F, F
    N, _, HO, WO = windows.shape[:4]
    # (C*F*F, N*HO*WO) with the reduction axis first: of the layouts tried, filters @ columns
    # in this order was the fastest GEMM on every standard case.
    columns = np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3)).reshape(C * F * F, -1)
    y = w.reshape(K, -1) @ columns
    return np.ascontiguousarray(y.reshape(K, N, HO, WO).transpose(1, 0, 2, 3))


def quick_case(case):
    """A tiny version of `case` for smoke runs: N=1, at most 16 channels and filters, at most
    32x32 pixels (never less than the dilated kernel); stride, padding and dilation kept."""
    N, C, H, W, K, F, S, P, D = case
    extent = D * (F - 1) + 1
    return (1, min(C, 16), max(min(H, 32), extent), max(min(W, 32), extent), min(K, 16),
            F, S, P, D)


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


def _header(args, blas_description, quick):
    usable, logical = _usable_cpus(), os.cpu_count()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    lines = [
        "# fastconv bench: conv2d forward",
        "",
        f"Machine: {_cpu_model()}, {usable} usable CPUs ({logical} logical); "
        f"threads T = {', '.join(map(str, args.threads))}; numpy {np.__version__}; "
        f"fastconv {fastconv.__version__}, ISA {fastconv.get_isa()}, "
        f"OpenMP {'on' if _runtime.openmp_enabled() else 'off (T>1 runs serially)'}; "
        f"Python {platform.python_version()}; load average at start {load}.",
        f"NumPy reference: im2col via sliding_window_view + one matmul ({args.dtype}); "
        f"its BLAS: {blas_description}.",
    ]
    set_variables = [f"{name}={os.environ[name]}" for name in OPENBLAS_VARIABLES
                     if name in os.environ]
    if set_variables:
        lines.append(f"Note: {', '.join(set_variables)} set in the environment: these slow "
                     f"NumPy's OpenBLAS on this kind of machine; left as they are.")
    else:
        lines.append(f"{' and '.join(OPENBLAS_VARIABLES)}: not set.")
    if quick:
        lines.append("QUICK run: shapes shrunk (N=1, <=16 channels and filters, <=32x32) and one "
                     "timed run each: a smoke test, the figures mean nothing.")
    else:
        lines.append(f"Timing: one untimed call each (checked against NumPy), then rounds "
                     f"alternating the implementations (rotating order) until each has >= "
                     f"{args.repeat} runs and >= {args.min_time:g} s, or >= "
                     f"{min(args.repeat, 3)} runs and >= {args.max_time:g} s; medians.")
    lines.append("'A / NumPy time' = median fastconv time / median NumPy time (< 1: fastconv "
                 "faster). 'CPU own / other' = CPUs used by this process / by all other "
                 f"processes during the timed runs of the case. Flags: C = other processes used "
                 f"> {FOREIGN_CPU_LIMIT} CPUs (after {args.retries} retries; the figures are "
                 f"suspect), U = T >= 2 but this process used < {OWN_CPU_MIN_PARALLEL} CPUs.")
    return "\n".join(lines)


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


def _run_case(name, case, threads, algorithms, dtype, args, rng):
    N, C, H, W, K, F, S, P, D = case
    x = rng.standard_normal((N, C, H, W), dtype=np.float64).astype(dtype)
    w = (rng.standard_normal((K, C, F, F), dtype=np.float64) / np.sqrt(C * F * F)).astype(dtype)

    def fastconv_call(algorithm):
        return lambda: fastconv.conv2d(x, w, stride=S, padding=P, dilation=D, algorithm=algorithm)

    functions = {algorithm: fastconv_call(algorithm) for algorithm in algorithms}
    functions[REFERENCE] = lambda: numpy_conv2d_im2col(x, w, S, P, D)

    # The first call of each doubles as its warm-up and as a check that all agree.
    reference = functions[REFERENCE]()
    scale = float(np.max(np.abs(reference))) or 1.0
    error = 0.0
    for algorithm in algorithms:
        y = functions[algorithm]()
        if y.shape != conv_output_shape(case):
            error = float("inf")
        else:
            error = max(error, float(np.max(np.abs(y - reference))) / scale)
    del reference
    fastconv.conv2d(x, w, stride=S, padding=P, dilation=D, algorithm="auto")
    auto = fastconv.last_algorithm()

    with _CpuMeter() as meter:
        times = _measure(functions, args.repeat, args.min_time, args.max_time)
    flops = conv_flops(case)
    medians = {impl: statistics.median(runs) for impl, runs in times.items()}
    return {
        "case": name, "threads": threads, "gflop": flops / 1e9, "auto": auto,
        "gflops": {impl: flops / t / 1e9 for impl, t in medians.items()},
        "ratio": {a: medians[a] / medians[REFERENCE] for a in algorithms},
        "runs": {impl: len(runs) for impl, runs in times.items()},
        "seconds": sum(sum(runs) for runs in times.values()),
        "error": error, "ok": error <= TOLERANCE[dtype],
        "own_cpu": meter.own, "foreign_cpu": meter.foreign,
    }


def _flags(row):
    flags = ""
    if row["foreign_cpu"] is not None and row["foreign_cpu"] > FOREIGN_CPU_LIMIT:
        flags += "C"
    if row["threads"] >= 2 and row["own_cpu"] is not None and row["own_cpu"] < OWN_CPU_MIN_PARALLEL:
        flags += "U"
    return flags


def _format(value):
    """Three significant figures, without a trailing exponent for the sizes seen here."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def _table(rows, algorithms):
    columns = (["case", "T", "GFLOP"] + [f"{a} GFLOP/s" for a in algorithms] + ["NumPy GFLOP/s"]
               + [f"{a} / NumPy time" for a in algorithms]
               + ["auto", "runs (" + " / ".join(list(algorithms) + ["np"]) + ")",
                  "max rel err", "CPU own / other", "flags"])
    aligns = (["---"] + ["---:"] * (2 * len(algorithms) + 3)
              + ["---", "---:", "---:", "---:", "---"])
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(aligns) + "|"]
    for row in rows:
        own, foreign = (("-" if value is None else f"{value:.2f}")
                        for value in (row["own_cpu"], row["foreign_cpu"]))
        cells = ([row["case"], str(row["threads"]), f"{row['gflop']:.3f}"]
                 + [_format(row["gflops"][a]) for a in algorithms]
                 + [_format(row["gflops"][REFERENCE])]
                 + [f"{row['ratio'][a]:.2f}" for a in algorithms]
                 + [row["auto"], " / ".join(str(row["runs"][i])
                                            for i in list(algorithms) + [REFERENCE]),
                    f"{row['error']:.1e}" + ("" if row["ok"] else " MISMATCH"),
                    f"{own} / {foreign}", _flags(row)])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _comma_list(kind, choices):
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
        unknown = [item for item in items if item not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {', '.join(unknown)}; choose from {', '.join(choices)}")
        return items
    return parse


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m fastconv bench",
        description="Time fastconv.conv2d's algorithms against a NumPy im2col reference on the "
                    "standard layer shapes (fastconv.bench_cases.CONV) and print a markdown "
                    "table of GFLOP/s.")
    parser.add_argument("--threads", type=_comma_list("threads", None), default=[1, 2],
                        metavar="T,...", help="thread counts (default: 1,2)")
    parser.add_argument("--cases", type=_comma_list("cases", tuple(CONV)), default=list(CONV),
                        metavar="NAME,...",
                        help=f"cases to run (default: all of {', '.join(CONV)})")
    parser.add_argument("--algorithms", type=_comma_list("algorithms", ALGORITHMS),
                        default=list(ALGORITHMS), metavar="A,...",
                        help="fastconv algorithms to time (default: direct,im2col)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="array dtype (default: float32)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed runs per implementation, at least (default: 5)")
    parser.add_argument("--min-time", type=float, default=0.5,
                        help="seconds of timed runs per implementation, at least (default: 0.5)")
    parser.add_argument("--max-time", type=float, default=2.0,
                        help="stop an implementation once it has this many seconds of timed "
                             "runs and min(repeat, 3) runs, even short of --repeat (default: 2)")
    parser.add_argument("--retries", type=int, default=1,
                        help=f"measure a case again, up to this many times, while other "
                             f"processes use > {FOREIGN_CPU_LIMIT} CPUs during it (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: tiny shapes, one timed run each")
    return parser


def main(argv=None):
    """Run the benchmark and print its table; returns 0, or 1 if any result disagreed with
    the NumPy reference.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments after ``bench`` (default: ``sys.argv[1:]``).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.retries < 0:
        parser.error(f"--retries must be >= 0, got {args.retries}")
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    if args.min_time < 0 or args.max_time < 0:
        parser.error("--min-time and --max-time must be >= 0")
    if args.quick:
        args.repeat, args.min_time, args.max_time, args.retries = 1, 0.0, 0.0, 0
    cases = {name: quick_case(CONV[name]) if args.quick else CONV[name] for name in args.cases}
    algorithms = [a for a in ALGORITHMS if a in args.algorithms]
    dtype = args.dtype

    limit_blas, blas_description = _blas_limiter()
    print(_header(args, blas_description, args.quick), flush=True)
    print(f"bench: {len(cases)} cases x T={args.threads}; progress below", file=sys.stderr,
          flush=True)

    rows, started = [], time.perf_counter()
    requested_threads = getattr(_config, "_requested_threads", None)
    try:
        for threads in args.threads:
            fastconv.set_num_threads(threads)
            with limit_blas(threads) if limit_blas else contextlib.nullcontext():
                for index, (name, case) in enumerate(cases.items(), 1):
                    row = _run_case(name, case, threads, algorithms, dtype, args,
                                    np.random.default_rng(args.seed))
                    for _ in range(args.retries):
                        if "C" not in _flags(row):
                            break
                        print(f"bench: T={threads} {name}: other processes used "
                              f"{row['foreign_cpu']:.2f} CPUs; measuring again",
                              file=sys.stderr, flush=True)
                        retry = _run_case(name, case, threads, algorithms, dtype, args,
                                          np.random.default_rng(args.seed))
                        if (retry["foreign_cpu"] is not None
                                and retry["foreign_cpu"] < row["foreign_cpu"]):
                            row = retry
                    rows.append(row)
                    summary = ", ".join(f"{impl} {row['gflops'][impl]:.1f}"
                                        for impl in algorithms + [REFERENCE])
                    print(f"bench: T={threads} [{index}/{len(cases)}] {name}: GFLOP/s {summary}"
                          f" ({row['seconds']:.1f} s timed, {time.perf_counter() - started:.0f} s"
                          f" total){'' if row['ok'] else ' MISMATCH'}",
                          file=sys.stderr, flush=True)
    finally:
        fastconv.set_num_threads(requested_threads)

    rows.sort(key=lambda row: (list(cases).index(row["case"]), row["threads"]))
    print()
    print(_table(rows, algorithms))
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"\nTotal {time.perf_counter() - started:.0f} s; load average at the end {load}.")
    failed = [f"{row['case']} T={row['threads']}" for row in rows if not row["ok"]]
    if failed:
        print(f"MISMATCH against the NumPy reference: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
