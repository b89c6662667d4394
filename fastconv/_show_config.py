"""show_config(): what this fastconv build is and what it will run here."""
import sys

from fastconv import _config, _runtime
from fastconv.conv import AUTO_DIRECT_MAX_FILTERS_PER_GROUP, AUTO_IM2COL_BELOW_WIDTH


def config_lines():
    import fastconv
    isa = _config.get_isa()
    names = _runtime.kernel_names(isa)
    return [
        f"fastconv {fastconv.__version__} (Python {sys.version.split()[0]})",
        f"OpenMP: {'on' if _runtime.openmp_enabled() else 'off (serial build)'}",
        f"threads: {_config.get_num_threads()}",
        f"kernel ISA: {isa} (this CPU runs: {', '.join(_config.available_isas())}; "
        f"FASTCONV_ISA forces a lower one)",
        f"GEMM micro-kernels: float32 {names['gemm']['float32']}, "
        f"float64 {names['gemm']['float64']}; streaming the filters (FC layers): "
        f"float32 {names['gemm_stream']['float32'] or 'none'}, "
        f"float64 {names['gemm_stream']['float64'] or 'none'}; "
        f"for 1-4 pixels: float32 {names['gemm_few_pixels']['float32'] or 'none'}, "
        f"float64 {names['gemm_few_pixels']['float64'] or 'none'}",
        f"direct tiles: float32 {names['direct']['float32']}, "
        f"float64 {names['direct']['float64']}; with filters along the lanes: "
        f"float32 {names['direct_filters']['float32']}, "
        f"float64 {names['direct_filters']['float64']}",
        f"conv2d algorithm='auto': direct, except im2col when K/groups > "
        f"{AUTO_DIRECT_MAX_FILTERS_PER_GROUP} and the output is narrower than "
        f"{AUTO_IM2COL_BELOW_WIDTH} pixels"
        + (" (on this path only for groups of 16 MiB of filters or more, as FC layers have)"
           if isa != "avx512" else ""),
    ]


def show_config():
    """Print the version, OpenMP on/off, thread count, kernel ISA and micro-kernels in use."""
    print("\n".join(config_lines()))
