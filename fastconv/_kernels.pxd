# Declarations of the C kernels in src_c/ (see src_c/fastconv_kernels.h for each contract).

from libc.stdint cimport int64_t


cdef extern from "fastconv_kernels.h" nogil:
    enum:
        FC_ISA_GENERIC
        FC_ISA_AVX2
        FC_ISA_AVX512
        FC_GEMM_MAX_TILE
        FC_STORE_SET
        FC_STORE_ADD
        FC_STORE_STREAM

    ctypedef void (*fc_sgemm_ukernel_fn)(Py_ssize_t kc, const float *a, const float *b,
                                         float *c, Py_ssize_t ldc, int accumulate) noexcept nogil
    ctypedef void (*fc_dgemm_ukernel_fn)(Py_ssize_t kc, const double *a, const double *b,
                                         double *c, Py_ssize_t ldc, int accumulate) noexcept nogil

    ctypedef void (*fc_sgemm_stream_ukernel_fn)(Py_ssize_t kc, const float *w,
                                                Py_ssize_t w_row_stride, const float *b,
                                                Py_ssize_t b_row_stride, float *c,
                                                Py_ssize_t ldc, Py_ssize_t columns,
                                                const float *b_prefetch, int accumulate) noexcept nogil
    ctypedef void (*fc_dgemm_stream_ukernel_fn)(Py_ssize_t kc, const double *w,
                                                Py_ssize_t w_row_stride, const double *b,
                                                Py_ssize_t b_row_stride, double *c,
                                                Py_ssize_t ldc, Py_ssize_t columns,
                                                const double *b_prefetch, int accumulate) noexcept nogil
    ctypedef void (*fc_sgemm_few_pixels_ukernel_fn)(Py_ssize_t kc, const float *w,
                                                    Py_ssize_t w_row_stride, Py_ssize_t rows,
                                                    const float *b, Py_ssize_t b_row_stride,
                                                    Py_ssize_t pixels, float *c,
                                                    Py_ssize_t ldc) noexcept nogil
    ctypedef void (*fc_dgemm_few_pixels_ukernel_fn)(Py_ssize_t kc, const double *w,
                                                    Py_ssize_t w_row_stride, Py_ssize_t rows,
                                                    const double *b, Py_ssize_t b_row_stride,
                                                    Py_ssize_t pixels, double *c,
                                                    Py_ssize_t ldc) noexcept nogil
    ctypedef void (*fc_sgemm_columns_few_pixels_fn)(Py_ssize_t kc, const float *w,
                                                    Py_ssize_t w_row_stride, Py_ssize_t n,
                                                    const float *b, Py_ssize_t b_row_stride,
                                                    Py_ssize_t pixels, float *c, Py_ssize_t ldc,
                                                    int accumulate) noexcept nogil
    ctypedef void (*fc_dgemm_columns_few_pixels_fn)(Py_ssize_t kc, const double *w,
                                                    Py_ssize_t w_row_stride, Py_ssize_t n,
                                                    const double *b, Py_ssize_t b_row_stride,
                                                    Py_ssize_t pixels, double *c, Py_ssize_t ldc,
                                                    int accumulate) noexcept nogil

    ctypedef void (*fc_smaxpool2d_row_fn)(
        const float *x, float *y, int64_t *indices, Py_ssize_t H, Py_ssize_t W, Py_ssize_t WO,
        Py_ssize_t ho, Py_ssize_t rows, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t SH,
        Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW) noexcept nogil
    ctypedef void (*fc_dmaxpool2d_row_fn)(
        const double *x, double *y, int64_t *indices, Py_ssize_t H, Py_ssize_t W, Py_ssize_t WO,
        Py_ssize_t ho, Py_ssize_t rows, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t SH,
        Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t DH, Py_ssize_t DW) noexcept nogil

    ctypedef void (*fc_sconv2d_direct_tile_fn)(
        Py_ssize_t taps, const Py_ssize_t *tap_offset, const float *x0, const float *x1,
        const float *w, float *y0, float *y1, Py_ssize_t k_stride, Py_ssize_t kt,
        unsigned lanes0, unsigned lanes1) noexcept nogil
    ctypedef void (*fc_dconv2d_direct_tile_fn)(
        Py_ssize_t taps, const Py_ssize_t *tap_offset, const double *x0, const double *x1,
        const double *w, double *y0, double *y1, Py_ssize_t k_stride, Py_ssize_t kt,
        unsigned lanes0, unsigned lanes1) noexcept nogil

    ctypedef void (*fc_sconv2d_backward_weight_tile_fn)(
        Py_ssize_t rows, Py_ssize_t WO, const float *dy, Py_ssize_t dy_k_stride,
        Py_ssize_t dy_row_stride, const float *x, Py_ssize_t x_row_stride,
        const Py_ssize_t *tap_offset, float *dw, Py_ssize_t dw_k_stride, Py_ssize_t kt,
        Py_ssize_t tt) noexcept nogil
    ctypedef void (*fc_dconv2d_backward_weight_tile_fn)(
        Py_ssize_t rows, Py_ssize_t WO, const double *dy, Py_ssize_t dy_k_stride,
        Py_ssize_t dy_row_stride, const double *x, Py_ssize_t x_row_stride,
        const Py_ssize_t *tap_offset, double *dw, Py_ssize_t dw_k_stride, Py_ssize_t kt,
        Py_ssize_t tt) noexcept nogil

    ctypedef void (*fc_spack_kmajor_fn)(const float *src, Py_ssize_t row_stride, Py_ssize_t rows,
                                        Py_ssize_t kc, Py_ssize_t panel, float *dst) noexcept nogil
    ctypedef void (*fc_dpack_kmajor_fn)(const double *src, Py_ssize_t row_stride,
                                        Py_ssize_t rows, Py_ssize_t kc, Py_ssize_t panel,
                                        double *dst) noexcept nogil

    ctypedef void (*fc_scopy_strided_fn)(const float *src, Py_ssize_t stride, Py_ssize_t n,
                                         float *dst) noexcept nogil
    ctypedef void (*fc_dcopy_strided_fn)(const double *src, Py_ssize_t stride, Py_ssize_t n,
                                         double *dst) noexcept nogil
    ctypedef void (*fc_sadd_strided_fn)(const float *src, Py_ssize_t stride, Py_ssize_t n,
                                        float *dst) noexcept nogil
    ctypedef void (*fc_dadd_strided_fn)(const double *src, Py_ssize_t stride, Py_ssize_t n,
                                        double *dst) noexcept nogil

    ctypedef void (*fc_sconv2d_direct_filter_tile_fn)(
        Py_ssize_t taps, const Py_ssize_t *tap_offset, const float *x,
        const Py_ssize_t *pixel_offset, const float *w, float *c, int accumulate) noexcept nogil
    ctypedef void (*fc_dconv2d_direct_filter_tile_fn)(
        Py_ssize_t taps, const Py_ssize_t *tap_offset, const double *x,
        const Py_ssize_t *pixel_offset, const double *w, double *c,
        int accumulate) noexcept nogil

    ctypedef void (*fc_sconv2d_direct_single_filter_fn)(
        Py_ssize_t taps, const Py_ssize_t *tap_offset, const float *x, const float *w, float *y,
        Py_ssize_t rows, Py_ssize_t row_vectors, Py_ssize_t x_row_stride,
        Py_ssize_t y_row_stride, int accumulate) noexcept nogil
    ctypedef void (*fc_dconv2d_direct_single_filter_fn)(
        Py_ssize_t taps, const Py_ssize_t *tap_offset, const double *x, const double *w,
        double *y, Py_ssize_t rows, Py_ssize_t row_vectors, Py_ssize_t x_row_stride,
        Py_ssize_t y_row_stride, int accumulate) noexcept nogil

    ctypedef void (*fc_sstore_filter_tile_fn)(
        const float *c, Py_ssize_t c_stride, Py_ssize_t pixels, Py_ssize_t kt, const float *bias,
        float *y, Py_ssize_t y_k_stride) noexcept nogil
    ctypedef void (*fc_dstore_filter_tile_fn)(
        const double *c, Py_ssize_t c_stride, Py_ssize_t pixels, Py_ssize_t kt,
        const double *bias, double *y, Py_ssize_t y_k_stride) noexcept nogil

    ctypedef void (*fc_sconv2d_backward_weight_filter_tile_fn)(
        Py_ssize_t rows, Py_ssize_t WO, const float *x, Py_ssize_t x_row_stride,
        const Py_ssize_t *tap_offset, const float *g, float *c) noexcept nogil
    ctypedef void (*fc_dconv2d_backward_weight_filter_tile_fn)(
        Py_ssize_t rows, Py_ssize_t WO, const double *x, Py_ssize_t x_row_stride,
        const Py_ssize_t *tap_offset, const double *g, double *c) noexcept nogil

    ctypedef struct fc_kernel_table:
        int isa
        const char *isa_name
        int sgemm_mr
        int sgemm_nr
        fc_sgemm_ukernel_fn sgemm_ukernel
        const char *sgemm_ukernel_name
        int dgemm_mr
        int dgemm_nr
        fc_dgemm_ukernel_fn dgemm_ukernel
        const char *dgemm_ukernel_name
        fc_smaxpool2d_row_fn smaxpool2d_row
        fc_dmaxpool2d_row_fn dmaxpool2d_row
        int sdirect_kt
        int sdirect_vw
        fc_sconv2d_direct_tile_fn sdirect_tile
        const char *sdirect_tile_name
        int ddirect_kt
        int ddirect_vw
        fc_dconv2d_direct_tile_fn ddirect_tile
        const char *ddirect_tile_name
        int dw_kt
        int dw_tt
        fc_sconv2d_backward_weight_tile_fn sbackward_weight_tile
        fc_dconv2d_backward_weight_tile_fn dbackward_weight_tile
        fc_spack_kmajor_fn spack_kmajor
        fc_dpack_kmajor_fn dpack_kmajor
        fc_scopy_strided_fn scopy_strided
        fc_dcopy_strided_fn dcopy_strided
        fc_sadd_strided_fn sadd_strided
        fc_dadd_strided_fn dadd_strided
        int sfilter_tile_mr
        int sfilter_tile_nr
        fc_sconv2d_direct_filter_tile_fn sdirect_filter_tile
        const char *sdirect_filter_tile_name
        int dfilter_tile_mr
        int dfilter_tile_nr
        fc_dconv2d_direct_filter_tile_fn ddirect_filter_tile
        const char *ddirect_filter_tile_name
        fc_sstore_filter_tile_fn sstore_filter_tile
        fc_dstore_filter_tile_fn dstore_filter_tile
        fc_sconv2d_backward_weight_filter_tile_fn sbackward_weight_filter_tile
        fc_dconv2d_backward_weight_filter_tile_fn dbackward_weight_filter_tile
        int sgemm_stream_mr
        int sgemm_stream_nr
        fc_sgemm_stream_ukernel_fn sgemm_stream_ukernel
        const char *sgemm_stream_ukernel_name
        int dgemm_stream_mr
        int dgemm_stream_nr
        fc_dgemm_stream_ukernel_fn dgemm_stream_ukernel
        const char *dgemm_stream_ukernel_name
        fc_sconv2d_direct_single_filter_fn sdirect_single_filter
        fc_dconv2d_direct_single_filter_fn ddirect_single_filter
        int sgemm_few_pixels_mr
        fc_sgemm_few_pixels_ukernel_fn sgemm_few_pixels_ukernel
        const char *sgemm_few_pixels_ukernel_name
        int dgemm_few_pixels_mr
        fc_dgemm_few_pixels_ukernel_fn dgemm_few_pixels_ukernel
        const char *dgemm_few_pixels_ukernel_name
        fc_sgemm_columns_few_pixels_fn sgemm_columns_few_pixels
        fc_dgemm_columns_few_pixels_fn dgemm_columns_few_pixels

    int fc_cpu_supports(int isa)
    const fc_kernel_table *fc_kernel_table_for(int isa)

    void fc_sconv2d_direct_row__generic(
        const float *x, const float *w, float *y, Py_ssize_t kb, Py_ssize_t y_plane_stride,
        Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t FH, Py_ssize_t FW, Py_ssize_t WO,
        Py_ssize_t ho, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
        Py_ssize_t DH, Py_ssize_t DW)
    void fc_dconv2d_direct_row__generic(
        const double *x, const double *w, double *y, Py_ssize_t kb, Py_ssize_t y_plane_stride,
        Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t FH, Py_ssize_t FW, Py_ssize_t WO,
        Py_ssize_t ho, Py_ssize_t SH, Py_ssize_t SW, Py_ssize_t PH, Py_ssize_t PW,
        Py_ssize_t DH, Py_ssize_t DW)


cdef extern from "openmp_shim.h" nogil:
    int fc_openmp_enabled()
    int fc_omp_max_threads()
