"""Build fastconv's compiled core: Cython drivers linked with the C kernels of src_c/.

Each src_c/ file is compiled with the flags of its own ISA (see ISA_SOURCES), so one build runs on
any x86-64 CPU and picks its kernels at import. OpenMP is found by a try-compile; without it the
build stops unless a serial build is asked for with FASTCONV_OPENMP=0.
"""
import concurrent.futures
import glob
import os
import platform
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

BASE_CFLAGS = ["-O3", "-std=gnu11", "-fno-strict-aliasing"]
AVX2_FLAGS = ["-mavx2", "-mfma"]
# 512-bit vectors for the loops gcc vectorises itself (its default tuning prefers 256).
AVX512_FLAGS = ["-mavx512f", "-mavx512vl", "-mavx512bw", "-mavx512dq", "-mavx2", "-mfma",
                "-mprefer-vector-width=512"]
IS_X86_64 = platform.machine().lower() in ("x86_64", "amd64")

# (source, extra flags): the baseline files run anywhere; the others only where dispatch allows.
ISA_SOURCES = [
    ("src_c/dispatch.c", []),
    ("src_c/gemm_ukernel__generic.c", []),
    ("src_c/conv2d_direct__generic.c", []),
    ("src_c/maxpool2d_row__generic.c", []),
    ("src_c/conv2d_direct_tile__generic.c", []),
    ("src_c/conv2d_backward_weight_tile__generic.c", []),
    ("src_c/pack_kmajor__generic.c", []),
    ("src_c/copy_strided__generic.c", []),
    ("src_c/conv2d_direct_filter_tile__generic.c", []),
    ("src_c/conv2d_backward_weight_filter_tile__generic.c", []),
    ("src_c/conv2d_direct_single_filter__generic.c", []),
]
if IS_X86_64:
    ISA_SOURCES += [
        ("src_c/gemm_ukernel__avx2.c", AVX2_FLAGS),
        ("src_c/gemm_few_pixels_ukernel__avx2.c", AVX2_FLAGS),
        ("src_c/gemm_ukernel__avx512.c", AVX512_FLAGS),
        ("src_c/maxpool2d_row__avx2.c", AVX2_FLAGS),
        ("src_c/maxpool2d_row__avx512.c", AVX512_FLAGS),
        ("src_c/conv2d_direct_tile__avx2.c", AVX2_FLAGS),
        ("src_c/conv2d_direct_tile__avx512.c", AVX512_FLAGS),
        ("src_c/conv2d_backward_weight_tile__avx2.c", AVX2_FLAGS),
        ("src_c/conv2d_backward_weight_tile__avx512.c", AVX512_FLAGS),
        ("src_c/pack_kmajor__avx2.c", AVX2_FLAGS),
        ("src_c/pack_kmajor__avx512.c", AVX512_FLAGS),
        ("src_c/copy_strided__avx512.c", AVX512_FLAGS),
        ("src_c/conv2d_direct_filter_tile__avx2.c", AVX2_FLAGS),
        ("src_c/conv2d_direct_filter_tile__avx512.c", AVX512_FLAGS),
        ("src_c/conv2d_backward_weight_filter_tile__avx2.c", AVX2_FLAGS),
        ("src_c/conv2d_backward_weight_filter_tile__avx512.c", AVX512_FLAGS),
        ("src_c/conv2d_direct_single_filter__avx2.c", AVX2_FLAGS),
        ("src_c/copy_strided__avx2.c", AVX2_FLAGS),
        ("src_c/conv2d_direct_single_filter__avx512.c", AVX512_FLAGS),
    ]
KERNEL_MACROS = [("FC_X86_KERNELS", "1")] if IS_X86_64 else []
OPENMP_FLAGS = ["-fopenmp"]
# FASTCONV_SANITIZE=1: a debug build under AddressSanitizer and UndefinedBehaviorSanitizer, for
# the test suite only (run Python with libasan preloaded; see tools/sanitize.sh).
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                  "-fno-omit-frame-pointer", "-g", "-O1"]


def want_openmp():
    return os.environ.get("FASTCONV_OPENMP", "1") != "0"


def compiler_has_openmp(compiler):
    """Try-compile and link a parallel loop: the only reliable test of an OpenMP toolchain."""
    source = "#include <omp.h>\nint main(void){int n=0;\n#pragma omp parallel reduction(+:n)\nn+=1;\nreturn n>0?0:1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "omp_check.c")
        with open(path, "w") as f:
            f.write(source)
        try:
            objects = compiler.compile([path], output_dir=tmp, extra_postargs=OPENMP_FLAGS)
            compiler.link_executable(objects, "omp_check", output_dir=tmp,
                                     extra_postargs=OPENMP_FLAGS)
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    """Compile src_c/ once with per-file ISA flags, then link those objects into every extension."""

    def build_extensions(self):
        use_openmp = want_openmp()
        if use_openmp and not compiler_has_openmp(self.compiler):
            sys.exit(
                "fastconv: the C compiler cannot build OpenMP code (tried -fopenmp).\n"
                "Install an OpenMP-capable compiler (e.g. gcc with libgomp), or build a serial,\n"
                "single-threaded fastconv on purpose with FASTCONV_OPENMP=0."
            )
        # Headers and included templates are dependencies too: an edit to one recompiles the
        # kernels, and new kernel objects relink every extension.
        kernel_depends = glob.glob("src_c/*.h") + glob.glob("src_c/*.template.c")
        sanitize = SANITIZE_FLAGS if os.environ.get("FASTCONV_SANITIZE", "0") == "1" else []
        # The kernels, then the extensions, compile on every core: CI builds three times (the
        # README's two commands and the sanitized build), and a clean `python setup.py
        # build_ext --inplace` took 76 s serial, 52 s so on this 2-core machine.
        def compile_kernel(source_and_flags):
            source, isa_flags = source_and_flags
            return self.compiler.compile(
                [source], output_dir=self.build_temp, macros=KERNEL_MACROS,
                include_dirs=["src_c"], extra_postargs=BASE_CFLAGS + isa_flags + sanitize,
                depends=kernel_depends)
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            kernel_objects = [obj for objects in pool.map(compile_kernel, ISA_SOURCES)
                              for obj in objects]
        self.parallel = self.parallel or os.cpu_count() or 1
        for ext in self.extensions:
            ext.extra_objects = kernel_objects
            ext.depends = ext.depends + kernel_objects + kernel_depends
            if use_openmp:
                ext.extra_compile_args += OPENMP_FLAGS
                ext.extra_link_args += OPENMP_FLAGS
            ext.define_macros.append(("FASTCONV_OPENMP", "1" if use_openmp else "0"))
            ext.extra_compile_args += sanitize
            ext.extra_link_args += sanitize
        super().build_extensions()


def extension(name):
    return Extension(
        f"fastconv.{name}", [f"fastconv/{name}.pyx"],
        include_dirs=[numpy.get_include(), "src_c"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    )


setup(
    ext_modules=cythonize(
        [extension("_runtime"), extension("_conv"), extension("_pool")],
        compiler_directives={
            "language_level": 3, "boundscheck": False, "wraparound": False,
            "cdivision": True, "initializedcheck": False, "nonecheck": False,
        },
        build_dir="build/cython",
    ),
    cmdclass={"build_ext": BuildExt},
)
