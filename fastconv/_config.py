"""Run-time configuration: the one place that decides the thread count and the ISA path.

Threads: ``set_num_threads(n)``, else ``OMP_NUM_THREADS``, else the CPUs this process may use.
Every parallel loop passes this count to its own OpenMP region; the global OpenMP pool size is
never changed. ISA: the best path this CPU runs, unless ``FASTCONV_ISA`` asks for a lower one.
"""
import functools
import os
import threading

from fastconv import _runtime
from fastconv._geometry import check_int

ISAS = ("generic", "avx2", "avx512")

_requested_threads = None
_isa = None
_last = threading.local()
# GNU OpenMP cannot restart its worker threads in a child forked after they ran: a parallel
# region there waits forever. So after such a fork (multiprocessing's "fork" start method)
# fastconv runs on one thread in the child.
_parallel_work_done = False
_forked_after_parallel_work = False


def _after_fork_in_child():
    global _forked_after_parallel_work
    _forked_after_parallel_work = _forked_after_parallel_work or _parallel_work_done
    _usable_cpus.cache_clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.cache
def _usable_cpus():
    """The CPUs this process may run on, asked once per process (and again in a forked child):
    asked on every call, the system call was about 2 us of a tiny conv2d's ~29."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _threads_from_environment():
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return _usable_cpus()


def set_num_threads(n):
    """Set the number of threads every fastconv call uses (>= 1; ``None`` restores the default).

    Parameters
    ----------
    n : int or None
        Thread count. Results do not depend on it: each output element is computed by one
        thread in a fixed order.
    """
    global _requested_threads
    _requested_threads = None if n is None else check_int("set_num_threads", "n", n, 1)


def get_num_threads():
    """The number of threads fastconv calls use (small calls use fewer). 1 in a build without
    OpenMP, and in a process forked after fastconv ran on several threads (GNU OpenMP cannot
    restart its threads there; start such processes with "spawn" or "forkserver" instead)."""
    if not _runtime.openmp_enabled() or _forked_after_parallel_work:
        return 1
    if _requested_threads is not None:
        return _requested_threads
    return _threads_from_environment()


# Work (multiply-adds, or elements visited by pooling) below which a call runs on one thread:
# waking a second thread costs tens of microseconds, and on a busy machine an OpenMP barrier
# waiting for a descheduled thread costs milliseconds, more than such a call computes.
MIN_WORK_PER_THREAD = 2**20


def threads_for(work):
    """The thread count for a call doing `work` units: get_num_threads(), fewer for small work.
    Results never depend on it (the tiling does not)."""
    global _parallel_work_done
    threads = max(1, min(get_num_threads(), int(work) // MIN_WORK_PER_THREAD))
    _parallel_work_done = _parallel_work_done or threads > 1
    return threads


def available_isas():
    """The ISA paths this build has and this CPU runs, lowest first."""
    return [isa for isa in _runtime.compiled_isas() if _runtime.cpu_supports(isa)]


def set_isa(name):
    """Use the ISA path `name` ("generic", "avx2", "avx512") from now on; None picks the best."""
    global _isa
    available = available_isas()
    if name is None:
        _isa = available[-1]
        return
    if name not in ISAS:
        raise ValueError(f"set_isa: name must be one of {', '.join(ISAS)}, got {name!r}")
    if name not in available:
        raise ValueError(f"set_isa: name must be a path this CPU runs "
                         f"({', '.join(available)}), got {name!r}")
    _isa = name


def get_isa():
    """The ISA path fastconv's kernels run on."""
    return _isa


def isa_code():
    return _runtime.ISA_CODES[_isa]


def record_algorithm(name):
    _last.algorithm = name


def last_algorithm():
    """The algorithm the last conv2d call of this Python thread ran ("direct" or "im2col"),
    so ``algorithm="auto"`` can be inspected; None before the first call."""
    return getattr(_last, "algorithm", None)


def _init_isa():
    requested = os.environ.get("FASTCONV_ISA", "").strip().lower()
    try:
        set_isa(requested or None)
    except ValueError as error:
        raise ImportError(f"fastconv: FASTCONV_ISA={requested!r} cannot be used: "
                          f"{str(error).split(': ', 1)[1]}") from None


_init_isa()
