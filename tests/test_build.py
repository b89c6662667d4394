"""The build and the run-time configuration: OpenMP present, show_config, the thread setting and
FASTCONV_ISA forcing (checked in fresh interpreters, since the ISA is chosen at import)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastconv
from fastconv import _config, _runtime

REPO = Path(__file__).resolve().parents[1]


def run_python(code, **env_changes):
    """Run `code` in a fresh interpreter importing this checkout's fastconv; env_changes set
    (or, with None, remove) environment variables. Returns the CompletedProcess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)


def test_build_has_openmp():
    if os.environ.get("FASTCONV_OPENMP") == "0":
        pytest.skip("FASTCONV_OPENMP=0: a serial build was asked for")
    assert _runtime.openmp_enabled(), (
        "fastconv was built without OpenMP (set FASTCONV_OPENMP=0 if that is intended)")


def test_show_config_prints_version_openmp_threads_and_isa(isa, restore_threads, capsys):
    fastconv.set_num_threads(3)
    fastconv.show_config()
    out = capsys.readouterr().out
    assert f"fastconv {fastconv.__version__}" in out
    openmp = "OpenMP: on" if _runtime.openmp_enabled() else "OpenMP: off"
    assert openmp in out
    assert f"threads: {fastconv.get_num_threads()}" in out
    assert f"ISA: {isa}" in out
    for available in _config.available_isas():
        assert available in out
    for kind in ("gemm", "gemm_stream", "gemm_few_pixels", "direct", "direct_filters"):
        for dtype, name in _runtime.kernel_names(isa)[kind].items():
            if kind == "gemm_stream" and isa == "generic":
                assert name is None and "streaming the filters (FC layers): float32 none" in out
                continue
            if kind == "gemm_few_pixels" and isa != "avx2":
                assert name is None and "for 1-4 pixels: float32 none" in out
                continue
            assert name in out and name.endswith(f"__{isa}"), (kind, dtype, name)


def test_get_num_threads_follows_set_num_threads_and_none_restores_default(restore_threads):
    fastconv.set_num_threads(None)
    default = fastconv.get_num_threads()
    assert isinstance(default, int) and default >= 1
    for n in (1, 3, 2):
        fastconv.set_num_threads(n)
        assert fastconv.get_num_threads() == (n if _runtime.openmp_enabled() else 1)
    fastconv.set_num_threads(None)
    assert fastconv.get_num_threads() == default


def test_default_threads_come_from_omp_num_threads_else_available_cpus():
    if not _runtime.openmp_enabled():
        pytest.skip("a serial build always uses 1 thread")
    code = "import fastconv; print(fastconv.get_num_threads())"
    assert run_python(code, OMP_NUM_THREADS="3").stdout.split() == ["3"]
    assert run_python(code, OMP_NUM_THREADS="1").stdout.split() == ["1"]
    result = run_python(code, OMP_NUM_THREADS=None)
    assert result.stdout.split() == [str(len(os.sched_getaffinity(0)))], result.stderr


def test_default_isa_is_the_best_this_cpu_runs():
    result = run_python("import fastconv, fastconv._config as c; "
                        "print(fastconv.get_isa(), c.available_isas()[-1])", FASTCONV_ISA=None)
    assert result.returncode == 0, result.stderr
    chosen, best = result.stdout.split()
    assert chosen == best
    assert _config.available_isas()[0] == "generic"


@pytest.mark.parametrize("value", ["generic", "GENERIC", " generic "])
def test_fastconv_isa_generic_forces_the_generic_path(value):
    result = run_python("import fastconv; print(fastconv.get_isa())", FASTCONV_ISA=value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "generic"


@pytest.mark.parametrize("value", ["sse9", "neon", "avx"])
def test_unknown_fastconv_isa_is_an_import_error_naming_it(value):
    result = run_python("import fastconv", FASTCONV_ISA=value)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert f"FASTCONV_ISA={value!r}" in result.stderr


def test_fastconv_isa_this_cpu_cannot_run_is_an_import_error():
    missing = [name for name in _config.ISAS if name not in _config.available_isas()]
    if not missing:
        pytest.skip("this CPU runs every ISA path of this build")
    result = run_python("import fastconv", FASTCONV_ISA=missing[-1])
    assert result.returncode != 0
    assert "ImportError" in result.stderr and "FASTCONV_ISA" in result.stderr


def test_set_isa_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"set_isa: name must be one of .*got 'sse9'"):
        _config.set_isa("sse9")
