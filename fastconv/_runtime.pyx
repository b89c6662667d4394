"""What the compiled core was built with and what this CPU can run (see fastconv/_config.py)."""

cimport numpy as cnp

from fastconv._kernels cimport (
    FC_ISA_AVX2, FC_ISA_AVX512, FC_ISA_GENERIC, fc_cpu_supports, fc_kernel_table,
    fc_kernel_table_for, fc_openmp_enabled,
)

cnp.import_array()

ISA_CODES = {"generic": FC_ISA_GENERIC, "avx2": FC_ISA_AVX2, "avx512": FC_ISA_AVX512}


def openmp_enabled():
    """True when the extension was compiled with OpenMP."""
    return bool(fc_openmp_enabled())


def compiled_isas():
    """ISA paths compiled into this build, lowest first."""
    return [name for name, code in ISA_CODES.items() if fc_kernel_table_for(code) != NULL]


def cpu_supports(str isa):
    """True when this build has the `isa` path and this CPU and OS can run it."""
    cdef int code = ISA_CODES[isa]
    return fc_kernel_table_for(code) != NULL and bool(fc_cpu_supports(code))


cdef _name(const char *name):
    return None if name == NULL else name.decode()


def kernel_names(str isa):
    """The micro-kernel names of one ISA path: {"gemm" | "gemm_stream" | "gemm_few_pixels" |
    "direct" | "direct_filters": {dtype name: kernel name, or None where the path has no such
    kernel}}."""
    cdef const fc_kernel_table *table = fc_kernel_table_for(ISA_CODES[isa])
    return {"gemm": {"float32": table.sgemm_ukernel_name.decode(),
                     "float64": table.dgemm_ukernel_name.decode()},
            "gemm_stream": {"float32": _name(table.sgemm_stream_ukernel_name),
                            "float64": _name(table.dgemm_stream_ukernel_name)},
            "gemm_few_pixels": {"float32": _name(table.sgemm_few_pixels_ukernel_name),
                                "float64": _name(table.dgemm_few_pixels_ukernel_name)},
            "direct": {"float32": table.sdirect_tile_name.decode(),
                       "float64": table.ddirect_tile_name.decode()},
            "direct_filters": {"float32": table.sdirect_filter_tile_name.decode(),
                               "float64": table.ddirect_filter_tile_name.decode()}}


def data_address(cnp.ndarray array):
    """The address of an array's first element (NumPy's `array.ctypes.data` builds a ctypes
    object for it: about 1.5 us, most of a small call's allocation time)."""
    return <size_t>cnp.PyArray_DATA(array)
