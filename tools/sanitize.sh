#!/usr/bin/env bash
# Run the test suite against an AddressSanitizer + UndefinedBehaviorSanitizer build of fastconv,
# once per ISA path this CPU runs (FASTCONV_ISA=generic, avx2, avx512), and fail on any sanitizer
# report or failing test.
#
# The checkout is copied (tracked and new files, no build outputs) into a temporary directory
# and built there with FASTCONV_SANITIZE=1 (setup.py: -fsanitize=address,undefined,
# -fno-sanitize-recover=undefined, -O1 -g), so the checkout's own build is left alone.
#
# Python itself is not instrumented, so libasan is preloaded. Leak detection is off (CPython
# keeps allocations until exit by design), and an absurd allocation returns NULL so that NumPy
# raises MemoryError as it would without ASan (the tests judge that; ASan would abort). Any
# report stops its process and fails the run: ASan writes its reports to log files, UBSan
# (which ignores log_path beside ASan) to stderr, so pytest runs with -s into a log that is
# searched. Children the tests start (fork, spawn, subprocess) inherit all this; a child whose
# output a test captures fails that test by its exit status.
#
# Usage: tools/sanitize.sh [pytest arguments]      default: the whole tests/ directory
#   FASTCONV_SANITIZE_ISAS="generic avx512"        default paths to run the suite on (default: all
#                                                  this CPU runs; "best": the best one only).
#     The tests that take the `isa` fixture run every path in any one run; FASTCONV_ISA only
#     sets the path of everything else (layers, networks, ...). CI runs "best".
#   FASTCONV_SANITIZE_JOBS=2                       tests/ file by file, 2 at a time
#   FASTCONV_SANITIZE_KEEP=1                       keep the temporary build and logs
#   FASTCONV_SANITIZE_TIMEOUT=1800                 seconds allowed per ISA path
# Needs python3 (PYTHON=...) with numpy, Cython, pytest and hypothesis, git, and gcc with
# libasan. It takes minutes (about 1 to build, then the paths side by side: about 4 on 2 cores).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/fastconv-asan.XXXXXX")"
[ "${FASTCONV_SANITIZE_KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'sanitize.sh: %s\n' "$*" >&2; exit 1; }
PYTEST_ARGS=("$@")
[ "${#PYTEST_ARGS[@]}" -gt 0 ] || PYTEST_ARGS=(tests)

"$PYTHON" -c "import Cython, numpy, setuptools, pytest, hypothesis" 2> /dev/null ||
    fail "$PYTHON needs Cython, numpy, setuptools (pyproject.toml's build-system.requires), pytest and hypothesis"

step "copy of the checkout in $WORK/src (tracked and new files, no build outputs)"
mkdir "$WORK/src"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ ! -e "$f" ] || printf '%s\0' "$f"; done |
    tar --null -T - -cf - | tar -xf - -C "$WORK/src")
cd "$WORK/src"

step "sanitized build (FASTCONV_SANITIZE=1)"
FASTCONV_SANITIZE=1 "$PYTHON" setup.py -q build_ext --inplace > "$WORK/build.log" 2>&1 ||
    { tail -50 "$WORK/build.log"; fail "the sanitized build failed"; }
for so in fastconv/_*.so; do
    case "$(nm -D "$so")" in
        *__asan_init*__ubsan_handle_*|*__ubsan_handle_*__asan_init*) ;;
        *) fail "$so is not built with ASan and UBSan" ;;
    esac
done

LIBASAN="$(gcc -print-file-name=libasan.so)"
[ -e "$LIBASAN" ] || fail "gcc has no libasan ($LIBASAN)"
LOGS="$WORK/sanitizer-logs"
mkdir "$LOGS"
export LD_PRELOAD="$LIBASAN"
ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=0"
export ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$LOGS/asan:log_exe_name=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONFAULTHANDLER=1
# The sanitized fastconv, whatever else is installed.
export PYTHONPATH="$WORK/src${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c "import fastconv; assert fastconv.__file__.startswith('$WORK/src')" ||
    fail "python does not import the sanitized copy"

ISAS="${FASTCONV_SANITIZE_ISAS:-$("$PYTHON" -c \
    'from fastconv import _config; print(" ".join(_config.available_isas()))')}"
[ "$ISAS" != best ] || ISAS="$("$PYTHON" -c \
    'from fastconv import _config; print(_config.available_isas()[-1])')"
# One job ($1): pytest with the remaining arguments on one path ($2), its log in
# $WORK/pytest-<job>.log and its result in $WORK/result-<job>.
run_job() {
    local job="$1" isa="$2" start=$SECONDS result
    shift 2
    local status=0
    FASTCONV_ISA="$isa" timeout --kill-after=60 "${FASTCONV_SANITIZE_TIMEOUT:-1800}" \
        "$PYTHON" -m pytest -q -s -rfE -p no:cacheprovider -o faulthandler_timeout=600 \
        "$@" > "$WORK/pytest-$job.log" 2>&1 || status=$?
    # (5: pytest collected nothing, as for a test file skipped whole when torch or dask is absent)
    case $status in
        0) result="passed" ;;
        5) result="passed" ;;
        *) result="FAILED" ;;
    esac
    printf '%s %d\n' "$result" $((SECONDS - start)) > "$WORK/result-$job"
}

# Jobs run side by side: under the sanitizers the suite is mostly single-threaded Python, so on
# 2 cores two concurrent jobs take about half the time of two in a row. A job is one path's
# tests; with FASTCONV_SANITIZE_JOBS=n (default 1 per path, all at once), the default tests/ runs
# as one job per test file, n at a time, largest files first (so the last ones are short).
PARALLEL="${FASTCONV_SANITIZE_JOBS:-0}"
if [ "$PARALLEL" -gt 0 ]; then
    [ "${PYTEST_ARGS[*]}" = tests ] || fail "FASTCONV_SANITIZE_JOBS needs the default tests/"
    mapfile -t JOB_ARGS < <(ls -S tests/test_*.py)
else
    JOB_ARGS=("${PYTEST_ARGS[*]}")
fi
step "tests on the paths: $ISAS, ${#JOB_ARGS[@]} job(s) each: pytest ${PYTEST_ARGS[*]}"
JOBS=()
for isa in $ISAS; do
    for index in "${!JOB_ARGS[@]}"; do
        job="$isa-$index"
        JOBS+=("$job")
        if [ "$PARALLEL" -gt 0 ]; then
            while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do wait -n || true; done
            run_job "$job" "$isa" "${JOB_ARGS[$index]}" &
        else
            run_job "$job" "$isa" "${PYTEST_ARGS[@]}" &
        fi
    done
done
wait
status=0
for job in "${JOBS[@]}"; do
    read -r result seconds < "$WORK/result-$job"
    grep -E '^=* ?[0-9]+ (passed|failed|error|skipped)' "$WORK/pytest-$job.log" | tail -1 || true
    printf '%s (path-job): tests %s in %ds\n' "$job" "$result" "$seconds"
    if [ "$result" != passed ]; then
        status=1
        grep -E '^(FAILED|ERROR)|Fatal Python error' "$WORK/pytest-$job.log" | head -20 || true
    fi
    # UBSan's reports, and ASan's should a log file fail to open
    if grep -qE 'runtime error:|ERROR: AddressSanitizer' "$WORK/pytest-$job.log"; then
        cp "$WORK/pytest-$job.log" "$LOGS/pytest-$job.log"
    fi
done

step "sanitizer reports"
# (ASan's log files also hold warnings about the allocations it refused: not reports.)
reports=$(grep -lE 'ERROR: AddressSanitizer|runtime error:' "$LOGS"/* 2> /dev/null || true)
if [ -n "$reports" ]; then
    for log in $reports; do
        printf -- '--- %s\n' "$(basename "$log")"
        # (pytest's progress characters precede a report printed mid-line)
        grep -E -A14 'runtime error:|ERROR: AddressSanitizer' "$log" |
            sed -E 's/^[.sxFE]+((src_c|build|fastconv)\/[^ ]+: runtime error|==)/\1/' |
            cut -c1-240 | head -80
    done
    fail "the sanitizers reported errors (above)"
fi
echo "none"
[ "$status" = 0 ] ||
    fail "tests failed under the sanitizers (FASTCONV_SANITIZE_KEEP=1 keeps the logs)"
echo "sanitize.sh: clean on: $ISAS"
