/*
 * Which ISA paths this CPU can run, and the kernel table of each. setup.py compiles the AVX2 and
 * AVX-512 files (and defines FC_X86_KERNELS) only for x86-64; elsewhere only the portable path
 * exists. Compiled with the baseline flags, so it runs on any CPU.
 */
#include "fastconv_kernels.h"

static const fc_kernel_table generic_table = {
    FC_ISA_GENERIC, "generic",
    4, 16, fc_sgemm_ukernel_4x16__generic, "fc_sgemm_ukernel_4x16__generic",
    4, 8, fc_dgemm_ukernel_4x8__generic, "fc_dgemm_ukernel_4x8__generic",
    fc_smaxpool2d_row__generic, fc_dmaxpool2d_row__generic,
    4, 8, fc_sconv2d_direct_tile_4x16__generic, "fc_sconv2d_direct_tile_4x16__generic",
    4, 4, fc_dconv2d_direct_tile_4x8__generic, "fc_dconv2d_direct_tile_4x8__generic",
    2, 4, fc_sconv2d_backward_weight_tile_2x4__generic, fc_dconv2d_backward_weight_tile_2x4__generic,
    fc_spack_kmajor__generic, fc_dpack_kmajor__generic,
    fc_scopy_strided__generic, fc_dcopy_strided__generic,
    fc_sadd_strided__generic, fc_dadd_strided__generic,
    4, 16, fc_sconv2d_direct_filter_tile_4x16__generic,
    "fc_sconv2d_direct_filter_tile_4x16__generic",
    4, 8, fc_dconv2d_direct_filter_tile_4x8__generic,
    "fc_dconv2d_direct_filter_tile_4x8__generic",
    fc_sstore_filter_tile__generic, fc_dstore_filter_tile__generic,
    fc_sconv2d_backward_weight_filter_tile_4x16__generic,
    fc_dconv2d_backward_weight_filter_tile_4x8__generic,
    /* No filter-streaming kernels: without SIMD broadcasts the packed GEMM is faster. */
    0, 0, NULL, NULL,
    0, 0, NULL, NULL,
    fc_sconv2d_direct_single_filter__generic, fc_dconv2d_direct_single_filter__generic,
    0, NULL, NULL,
    0, NULL, NULL,
    NULL, NULL,
};

#ifdef FC_X86_KERNELS
static const fc_kernel_table avx2_table = {
    FC_ISA_AVX2, "avx2",
    6, 16, fc_sgemm_ukernel_6x16__avx2, "fc_sgemm_ukernel_6x16__avx2",
    6, 8, fc_dgemm_ukernel_6x8__avx2, "fc_dgemm_ukernel_6x8__avx2",
    fc_smaxpool2d_row__avx2, fc_dmaxpool2d_row__avx2,
    6, 8, fc_sconv2d_direct_tile_6x16__avx2, "fc_sconv2d_direct_tile_6x16__avx2",
    6, 4, fc_dconv2d_direct_tile_6x8__avx2, "fc_dconv2d_direct_tile_6x8__avx2",
    2, 4, fc_sconv2d_backward_weight_tile_2x4__avx2, fc_dconv2d_backward_weight_tile_2x4__avx2,
    fc_spack_kmajor__avx2, fc_dpack_kmajor__avx2,
    fc_scopy_strided__avx2, fc_dcopy_strided__avx2,
    fc_sadd_strided__generic, fc_dadd_strided__generic,
    6, 16, fc_sconv2d_direct_filter_tile_6x16__avx2,
    "fc_sconv2d_direct_filter_tile_6x16__avx2",
    6, 8, fc_dconv2d_direct_filter_tile_6x8__avx2,
    "fc_dconv2d_direct_filter_tile_6x8__avx2",
    fc_sstore_filter_tile__avx2, fc_dstore_filter_tile__avx2,
    fc_sconv2d_backward_weight_filter_tile_6x16__avx2,
    fc_dconv2d_backward_weight_filter_tile_6x8__avx2,
    4, 24, fc_sgemm_stream_ukernel_4x24__avx2, "fc_sgemm_stream_ukernel_4x24__avx2",
    4, 12, fc_dgemm_stream_ukernel_4x12__avx2, "fc_dgemm_stream_ukernel_4x12__avx2",
    fc_sconv2d_direct_single_filter__avx2, fc_dconv2d_direct_single_filter__avx2,
    16, fc_sgemm_few_pixels_ukernel_16__avx2, "fc_sgemm_few_pixels_ukernel_16__avx2",
    8, fc_dgemm_few_pixels_ukernel_8__avx2, "fc_dgemm_few_pixels_ukernel_8__avx2",
    fc_sgemm_columns_few_pixels__avx2, fc_dgemm_columns_few_pixels__avx2,
};

static const fc_kernel_table avx512_table = {
    FC_ISA_AVX512, "avx512",
    14, 32, fc_sgemm_ukernel_14x32__avx512, "fc_sgemm_ukernel_14x32__avx512",
    14, 16, fc_dgemm_ukernel_14x16__avx512, "fc_dgemm_ukernel_14x16__avx512",
    fc_smaxpool2d_row__avx512, fc_dmaxpool2d_row__avx512,
    14, 16, fc_sconv2d_direct_tile_14x32__avx512, "fc_sconv2d_direct_tile_14x32__avx512",
    14, 8, fc_dconv2d_direct_tile_14x16__avx512, "fc_dconv2d_direct_tile_14x16__avx512",
    4, 6, fc_sconv2d_backward_weight_tile_4x6__avx512, fc_dconv2d_backward_weight_tile_4x6__avx512,
    fc_spack_kmajor__avx512, fc_dpack_kmajor__generic,
    fc_scopy_strided__avx512, fc_dcopy_strided__avx512,
    fc_sadd_strided__avx512, fc_dadd_strided__avx512,
    14, 32, fc_sconv2d_direct_filter_tile_14x32__avx512,
    "fc_sconv2d_direct_filter_tile_14x32__avx512",
    14, 16, fc_dconv2d_direct_filter_tile_14x16__avx512,
    "fc_dconv2d_direct_filter_tile_14x16__avx512",
    fc_sstore_filter_tile__avx512, fc_dstore_filter_tile__avx2,
    fc_sconv2d_backward_weight_filter_tile_14x32__avx512,
    fc_dconv2d_backward_weight_filter_tile_14x16__avx512,
    8, 48, fc_sgemm_stream_ukernel_8x48__avx512, "fc_sgemm_stream_ukernel_8x48__avx512",
    8, 24, fc_dgemm_stream_ukernel_8x24__avx512, "fc_dgemm_stream_ukernel_8x24__avx512",
    fc_sconv2d_direct_single_filter__avx512, fc_dconv2d_direct_single_filter__avx512,
    /* Not measured on AVX-512 yet: its 8-row streaming kernel has twice AVX2's chains. */
    0, NULL, NULL,
    0, NULL, NULL,
    NULL, NULL,
};
#endif

int fc_cpu_supports(int isa)
{
    switch (isa) {
    case FC_ISA_GENERIC:
        return 1;
#ifdef FC_X86_KERNELS
    /* gcc's and clang's __builtin_cpu_supports check the OS saves the wider registers (XGETBV). */
    case FC_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case FC_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2")
               && __builtin_cpu_supports("fma");
#endif
    default:
        return 0;
    }
}

const fc_kernel_table *fc_kernel_table_for(int isa)
{
    switch (isa) {
    case FC_ISA_GENERIC:
        return &generic_table;
#ifdef FC_X86_KERNELS
    case FC_ISA_AVX2:
        return &avx2_table;
    case FC_ISA_AVX512:
        return &avx512_table;
#endif
    default:
        return NULL;
    }
}
