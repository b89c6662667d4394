/*
 * fastconv_kernels.h: every C symbol of src_c/, and the kernel table the Cython drivers pick from.
 *
 * The C layer computes one tile at a time and trusts its caller (the Cython drivers, after the
 * Python geometry module validated every shape): pointers are valid for the extents given, sizes
 * are >= 0, and nothing here allocates or checks.
 */
#ifndef FASTCONV_KERNELS_H
#define FASTCONV_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* FC_CONCAT(a, b): a and b pasted after their macros expand. The kernel templates name their
 * helpers after the function they are included to define (FC_CONCAT(FC_FILTER_TILE, _body)). */
#define FC_CONCAT_EXPANDED(a, b) a##b
#define FC_CONCAT(a, b) FC_CONCAT_EXPANDED(a, b)

#ifdef __cplusplus
extern "C" {
#endif

/* Instruction-set paths, lowest first: a path may run only where fc_cpu_supports() says so. */
enum {
    FC_ISA_GENERIC = 0,
    FC_ISA_AVX2 = 1,
    FC_ISA_AVX512 = 2
};

/*
 * GEMM micro-kernel contract (all ISAs, both dtypes), for a tile of MR rows x NR columns:
 *
 *     C[i*ldc + j] = (accumulate ? C[i*ldc + j] : 0) + sum_{p < kc} a[p*MR + i] * b[p*NR + j]
 *
 * `a` is a packed MR x kc panel stored column by column, `b` a packed kc x NR panel stored row by
 * row, both zero-padded to the full MR / NR by the packing code. For each (i, j) the sum over p is
 * formed from zero in increasing p and only then added to C, so an element gets the same bits
 * whether its tile went straight to C or through a scratch tile, on whichever thread. kc may be 0;
 * with accumulate == 0, C is written without being read.
 */
typedef void (*fc_sgemm_ukernel_fn)(ptrdiff_t kc, const float *a, const float *b,
                                    float *c, ptrdiff_t ldc, int accumulate);
typedef void (*fc_dgemm_ukernel_fn)(ptrdiff_t kc, const double *a, const double *b,
                                    double *c, ptrdiff_t ldc, int accumulate);

void fc_sgemm_ukernel_4x16__generic(ptrdiff_t kc, const float *a, const float *b,
                                    float *c, ptrdiff_t ldc, int accumulate);
void fc_dgemm_ukernel_4x8__generic(ptrdiff_t kc, const double *a, const double *b,
                                   double *c, ptrdiff_t ldc, int accumulate);
void fc_sgemm_ukernel_6x16__avx2(ptrdiff_t kc, const float *a, const float *b,
                                 float *c, ptrdiff_t ldc, int accumulate);
void fc_dgemm_ukernel_6x8__avx2(ptrdiff_t kc, const double *a, const double *b,
                                double *c, ptrdiff_t ldc, int accumulate);
void fc_sgemm_ukernel_14x32__avx512(ptrdiff_t kc, const float *a, const float *b,
                                    float *c, ptrdiff_t ldc, int accumulate);
void fc_dgemm_ukernel_14x16__avx512(ptrdiff_t kc, const double *a, const double *b,
                                    double *c, ptrdiff_t ldc, int accumulate);

/*
 * Streaming GEMM micro-kernel contract (AVX2 and AVX-512, both dtypes), for MR rows of w x NR
 * columns of b (sgemm_stream_mr x sgemm_stream_nr in the table):
 *
 *     C[i*ldc + j] (+)= sum_{p < kc} w[i*w_row_stride + p] * b[p*b_row_stride + j]
 *
 * for j < columns rounded up to whole vectors (columns <= NR: a narrower last panel of pixels
 * takes one or two vectors, not three; b is read and C written that far only)
 * (+= when accumulate is FC_STORE_ADD, = when FC_STORE_SET or FC_STORE_STREAM; the last writes C
 * with non-temporal stores, past the caches, and needs every row of C 64-byte aligned; the call
 * ends with a store fence, so C is complete once it returns). Both operands are read where they
 * lie, unpacked: w's rows are broadcast, b's rows are loaded in whole vectors. As in the GEMM
 * micro-kernels the sum over p is formed from zero in increasing p and only then added to C (or
 * stored: the same bits as adding it to zeros, since a sum formed from +0 is never -0), so a
 * column's bits do not depend on how many vectors its tile had. Two uses: layers that read their
 * filters once per call (FC layers: w is the filters, streaming in from memory while the FMAs run,
 * b a packed panel of pixels with b_row_stride = NR), and 1x1 layers (w the filters, b the input
 * channels' rows in place, b_row_stride = H*W). When b_prefetch is not NULL, step p also prefetches
 * the cache line at b_prefetch + p*b_row_stride into L2 (the driver points it at the next block of
 * b). The generic table has NULL (compiled without SIMD, the packed GEMM measured 3-5x faster).
 */
enum { FC_STORE_SET = 0, FC_STORE_ADD = 1, FC_STORE_STREAM = 2 };
typedef void (*fc_sgemm_stream_ukernel_fn)(ptrdiff_t kc, const float *w, ptrdiff_t w_row_stride,
                                           const float *b, ptrdiff_t b_row_stride, float *c,
                                           ptrdiff_t ldc, ptrdiff_t columns,
                                           const float *b_prefetch, int accumulate);
typedef void (*fc_dgemm_stream_ukernel_fn)(ptrdiff_t kc, const double *w,
                                           ptrdiff_t w_row_stride, const double *b,
                                           ptrdiff_t b_row_stride, double *c, ptrdiff_t ldc,
                                           ptrdiff_t columns, const double *b_prefetch,
                                           int accumulate);
#define FC_DECLARE_STREAM_UKERNEL(T, NAME)                                                      \
    void NAME(ptrdiff_t kc, const T *w, ptrdiff_t w_row_stride, const T *b,                     \
              ptrdiff_t b_row_stride, T *c, ptrdiff_t ldc, ptrdiff_t columns,                   \
              const T *b_prefetch, int accumulate);
FC_DECLARE_STREAM_UKERNEL(float, fc_sgemm_stream_ukernel_4x24__avx2)
FC_DECLARE_STREAM_UKERNEL(double, fc_dgemm_stream_ukernel_4x12__avx2)
FC_DECLARE_STREAM_UKERNEL(float, fc_sgemm_stream_ukernel_8x48__avx512)
FC_DECLARE_STREAM_UKERNEL(double, fc_dgemm_stream_ukernel_8x24__avx512)
#undef FC_DECLARE_STREAM_UKERNEL

/*
 * Max-pooling of output rows ho .. ho+rows-1 of one plane (all ISAs, both dtypes):
 *
 *     y[r*WO + wo] = max over taps (kh, kw) of x[h][w], h = (ho+r)*SH + kh*DH - PH,
 *                    w = wo*SW + kw*DW - PW, for 0 <= r < rows and 0 <= wo < WO
 *
 * over the taps inside the H x W plane `x`, with PyTorch's tie and NaN rules (see the template).
 * If `indices` is not NULL it gets the flat offset h*W + w of each maximum, laid out as y.
 * Several rows per call: a 16-output row of cifar_pool cost as much in the call and its setup
 * as in comparisons.
 */
typedef void (*fc_smaxpool2d_row_fn)(const float *x, float *y, int64_t *indices,
                                     ptrdiff_t H, ptrdiff_t W, ptrdiff_t WO, ptrdiff_t ho,
                                     ptrdiff_t rows, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                                     ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t DH,
                                     ptrdiff_t DW);
typedef void (*fc_dmaxpool2d_row_fn)(const double *x, double *y, int64_t *indices,
                                     ptrdiff_t H, ptrdiff_t W, ptrdiff_t WO, ptrdiff_t ho,
                                     ptrdiff_t rows, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,
                                     ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t DH,
                                     ptrdiff_t DW);

#define FC_DECLARE_MAXPOOL2D_ROW(T, NAME)                                                       \
    void NAME(const T *x, T *y, int64_t *indices, ptrdiff_t H, ptrdiff_t W, ptrdiff_t WO,       \
              ptrdiff_t ho, ptrdiff_t rows, ptrdiff_t KH, ptrdiff_t KW, ptrdiff_t SH,          \
              ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW, ptrdiff_t DH, ptrdiff_t DW);
FC_DECLARE_MAXPOOL2D_ROW(float, fc_smaxpool2d_row__generic)
FC_DECLARE_MAXPOOL2D_ROW(double, fc_dmaxpool2d_row__generic)
FC_DECLARE_MAXPOOL2D_ROW(float, fc_smaxpool2d_row__avx2)
FC_DECLARE_MAXPOOL2D_ROW(double, fc_dmaxpool2d_row__avx2)
FC_DECLARE_MAXPOOL2D_ROW(float, fc_smaxpool2d_row__avx512)
FC_DECLARE_MAXPOOL2D_ROW(double, fc_dmaxpool2d_row__avx512)
#undef FC_DECLARE_MAXPOOL2D_ROW

/*
 * Direct-convolution register tile (all ISAs, both dtypes): KT filters x 2 vectors of VW output
 * pixels, each summed over every (input channel, kernel tap) pair t < taps of a padded input band:
 *
 *     y_v[k*k_stride + n(l)] += sum_{t < taps} x_v[tap_offset[t] + l] * w[t*KT + k]
 *
 * for v in {0, 1}, k < kt (<= KT) and the lanes l < VW whose bit is set in lanes_v, where n(l)
 * counts the set bits below l: the chosen lanes go to consecutive elements of y_v (n(l) = l when
 * the set bits are the lowest ones; a vector that spans the end of one output row and the start
 * of the next skips the lanes in between). Every lane of every x_v read must lie inside the band
 * (lanes not chosen are read, never stored); `w` holds the
 * tile's filters packed KT per tap, zero beyond kt. Per output element the sum is formed from
 * zero in t order and then added to y, so it does not depend on the thread.
 */
typedef void (*fc_sconv2d_direct_tile_fn)(
    ptrdiff_t taps, const ptrdiff_t *tap_offset, const float *x0, const float *x1,
    const float *w, float *y0, float *y1, ptrdiff_t k_stride, ptrdiff_t kt, unsigned lanes0,
    unsigned lanes1);
typedef void (*fc_dconv2d_direct_tile_fn)(
    ptrdiff_t taps, const ptrdiff_t *tap_offset, const double *x0, const double *x1,
    const double *w, double *y0, double *y1, ptrdiff_t k_stride, ptrdiff_t kt, unsigned lanes0,
    unsigned lanes1);

#define FC_DECLARE_DIRECT_TILE(T, NAME)                                                         \
    void NAME(ptrdiff_t taps, const ptrdiff_t *tap_offset, const T *x0, const T *x1,          \
              const T *w, T *y0, T *y1, ptrdiff_t k_stride, ptrdiff_t kt, unsigned lanes0,     \
              unsigned lanes1);
FC_DECLARE_DIRECT_TILE(float, fc_sconv2d_direct_tile_4x16__generic)
FC_DECLARE_DIRECT_TILE(double, fc_dconv2d_direct_tile_4x8__generic)
FC_DECLARE_DIRECT_TILE(float, fc_sconv2d_direct_tile_6x16__avx2)
FC_DECLARE_DIRECT_TILE(double, fc_dconv2d_direct_tile_6x8__avx2)
FC_DECLARE_DIRECT_TILE(float, fc_sconv2d_direct_tile_14x32__avx512)
FC_DECLARE_DIRECT_TILE(double, fc_dconv2d_direct_tile_14x16__avx512)
#undef FC_DECLARE_DIRECT_TILE

/*
 * Direct-convolution tile with the filters along the vector lanes (all ISAs, both dtypes): MR
 * output pixels (positions of a padded input band, or of x itself where no window leaves it)
 * x NR filters, summed over the (input channel, kernel tap) pairs t < taps:
 *
 *     c[i*NR + j] (+)= sum_{t < taps} x[pixel_offset[i] + tap_offset[t]] * w[t*NR + j]
 *
 * for every i < MR and j < NR (the caller keeps the pixels and filters it needs); `w` holds the
 * tile's filters packed NR per tap. A tile's pixels are usually consecutive positions of one
 * row; they may also end one output row and start the next (offsets then jump by the gap
 * between the rows), and a tile past the last output may repeat an offset. With accumulate ==
 * 0 the tile is written, else added to. Every x read must lie inside the band (or x). The sum
 * is formed from zero in t order, then stored.
 */
typedef void (*fc_sconv2d_direct_filter_tile_fn)(ptrdiff_t taps, const ptrdiff_t *tap_offset,
                                                 const float *x, const ptrdiff_t *pixel_offset,
                                                 const float *w, float *c, int accumulate);
typedef void (*fc_dconv2d_direct_filter_tile_fn)(ptrdiff_t taps, const ptrdiff_t *tap_offset,
                                                 const double *x, const ptrdiff_t *pixel_offset,
                                                 const double *w, double *c, int accumulate);

/*
 * Single-filter direct convolution, pixels along the vector lanes (FC_VW of them: the ISA's
 * direct-tile vector width, sdirect_vw / ddirect_vw in the table), for layers with a few
 * filters per group:
 *
 *     y[r*y_row_stride + v*VW + l] (+)= sum_{t < taps} w[t] * x[r*x_row_stride + v*VW + l
 *                                                                + tap_offset[t]]
 *
 * for every r < rows, v < row_vectors and lane l < VW; `w` holds the filter's taps in t order.
 * With accumulate == 0 the outputs are written, else added to. Every x read must lie inside
 * the band, every y element inside the caller's scratch. Each sum is formed from zero in t
 * order, then stored.
 */
typedef void (*fc_sconv2d_direct_single_filter_fn)(
    ptrdiff_t taps, const ptrdiff_t *tap_offset, const float *x, const float *w, float *y,
    ptrdiff_t rows, ptrdiff_t row_vectors, ptrdiff_t x_row_stride, ptrdiff_t y_row_stride,
    int accumulate);
typedef void (*fc_dconv2d_direct_single_filter_fn)(
    ptrdiff_t taps, const ptrdiff_t *tap_offset, const double *x, const double *w, double *y,
    ptrdiff_t rows, ptrdiff_t row_vectors, ptrdiff_t x_row_stride, ptrdiff_t y_row_stride,
    int accumulate);
#define FC_DECLARE_SINGLE_FILTER(T, NAME)                                                       \
    void NAME(ptrdiff_t taps, const ptrdiff_t *tap_offset, const T *x, const T *w, T *y,        \
              ptrdiff_t rows, ptrdiff_t row_vectors, ptrdiff_t x_row_stride,                    \
              ptrdiff_t y_row_stride, int accumulate);
FC_DECLARE_SINGLE_FILTER(float, fc_sconv2d_direct_single_filter__generic)
FC_DECLARE_SINGLE_FILTER(double, fc_dconv2d_direct_single_filter__generic)
FC_DECLARE_SINGLE_FILTER(float, fc_sconv2d_direct_single_filter__avx2)
FC_DECLARE_SINGLE_FILTER(double, fc_dconv2d_direct_single_filter__avx2)
FC_DECLARE_SINGLE_FILTER(float, fc_sconv2d_direct_single_filter__avx512)
FC_DECLARE_SINGLE_FILTER(double, fc_dconv2d_direct_single_filter__avx512)
#undef FC_DECLARE_SINGLE_FILTER

/*
 * Store of a filter-vector tile's outputs: y[k*y_k_stride + i] = c[i*c_stride + k] (+ bias[k]
 * unless bias is NULL) for i < pixels and k < kt: the tile's pixel-major block becomes kt rows
 * of y. Reads and writes only those elements (and bias[0 .. kt-1]).
 */
typedef void (*fc_sstore_filter_tile_fn)(const float *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                         ptrdiff_t kt, const float *bias, float *y,
                                         ptrdiff_t y_k_stride);
typedef void (*fc_dstore_filter_tile_fn)(const double *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                         ptrdiff_t kt, const double *bias, double *y,
                                         ptrdiff_t y_k_stride);
void fc_sstore_filter_tile__generic(const float *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                    ptrdiff_t kt, const float *bias, float *y,
                                    ptrdiff_t y_k_stride);
void fc_dstore_filter_tile__generic(const double *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                    ptrdiff_t kt, const double *bias, double *y,
                                    ptrdiff_t y_k_stride);
void fc_sstore_filter_tile__avx2(const float *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                 ptrdiff_t kt, const float *bias, float *y, ptrdiff_t y_k_stride);
void fc_dstore_filter_tile__avx2(const double *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                 ptrdiff_t kt, const double *bias, double *y,
                                 ptrdiff_t y_k_stride);
void fc_sstore_filter_tile__avx512(const float *c, ptrdiff_t c_stride, ptrdiff_t pixels,
                                   ptrdiff_t kt, const float *bias, float *y,
                                   ptrdiff_t y_k_stride);

#define FC_DECLARE_FILTER_TILE(T, NAME)                                                         \
    void NAME(ptrdiff_t taps, const ptrdiff_t *tap_offset, const T *x,                         \
              const ptrdiff_t *pixel_offset, const T *w, T *c, int accumulate);
FC_DECLARE_FILTER_TILE(float, fc_sconv2d_direct_filter_tile_4x16__generic)
FC_DECLARE_FILTER_TILE(double, fc_dconv2d_direct_filter_tile_4x8__generic)
FC_DECLARE_FILTER_TILE(float, fc_sconv2d_direct_filter_tile_6x16__avx2)
FC_DECLARE_FILTER_TILE(double, fc_dconv2d_direct_filter_tile_6x8__avx2)
FC_DECLARE_FILTER_TILE(float, fc_sconv2d_direct_filter_tile_14x32__avx512)
FC_DECLARE_FILTER_TILE(double, fc_dconv2d_direct_filter_tile_14x16__avx512)
#undef FC_DECLARE_FILTER_TILE

/*
 * Backward-weights register tile (all ISAs, both dtypes): KT filters x TT taps of dw, each the dot
 * product of a filter's output-gradient rows with a tap's rows of the padded input band:
 *
 *     dw[k*dw_k_stride + t] += sum_{r < rows, wo < WO} dy[k*dy_k_stride + r*dy_row_stride + wo]
 *                                                    * x[r*x_row_stride + tap_offset[t] + wo]
 *
 * for k < kt (<= KT) and t < tt (<= TT). Only the first WO elements of a row of dy or x are read
 * (partial vectors under a mask); dy's rows for k >= kt and taps t >= tt may be read as those of
 * k = 0 and t = 0, never stored. Per element of dw the sum is formed in a fixed order from zero
 * and then added, whichever thread runs it.
 */
typedef void (*fc_sconv2d_backward_weight_tile_fn)(
    ptrdiff_t rows, ptrdiff_t WO, const float *dy, ptrdiff_t dy_k_stride, ptrdiff_t dy_row_stride,
    const float *x, ptrdiff_t x_row_stride, const ptrdiff_t *tap_offset, float *dw,
    ptrdiff_t dw_k_stride, ptrdiff_t kt, ptrdiff_t tt);
typedef void (*fc_dconv2d_backward_weight_tile_fn)(
    ptrdiff_t rows, ptrdiff_t WO, const double *dy, ptrdiff_t dy_k_stride,
    ptrdiff_t dy_row_stride, const double *x, ptrdiff_t x_row_stride, const ptrdiff_t *tap_offset,
    double *dw, ptrdiff_t dw_k_stride, ptrdiff_t kt, ptrdiff_t tt);

#define FC_DECLARE_BACKWARD_WEIGHT_TILE(T, NAME)                                                \
    void NAME(ptrdiff_t rows, ptrdiff_t WO, const T *dy, ptrdiff_t dy_k_stride,                \
              ptrdiff_t dy_row_stride, const T *x, ptrdiff_t x_row_stride,                     \
              const ptrdiff_t *tap_offset, T *dw, ptrdiff_t dw_k_stride, ptrdiff_t kt,         \
              ptrdiff_t tt);
FC_DECLARE_BACKWARD_WEIGHT_TILE(float, fc_sconv2d_backward_weight_tile_2x4__generic)
FC_DECLARE_BACKWARD_WEIGHT_TILE(double, fc_dconv2d_backward_weight_tile_2x4__generic)
FC_DECLARE_BACKWARD_WEIGHT_TILE(float, fc_sconv2d_backward_weight_tile_2x4__avx2)
FC_DECLARE_BACKWARD_WEIGHT_TILE(double, fc_dconv2d_backward_weight_tile_2x4__avx2)
FC_DECLARE_BACKWARD_WEIGHT_TILE(float, fc_sconv2d_backward_weight_tile_4x6__avx512)
FC_DECLARE_BACKWARD_WEIGHT_TILE(double, fc_dconv2d_backward_weight_tile_4x6__avx512)
#undef FC_DECLARE_BACKWARD_WEIGHT_TILE

/*
 * Backward-weights register tile with filters along the vector lanes (all ISAs, both dtypes):
 * MR kernel taps x NR filters of dw, each summed over `rows` output rows of WO pixels:
 *
 *     c[i*NR + j] += sum_{r < rows, wo < WO} x[tap_offset[i] + r*x_row_stride + wo]
 *                                           * g[(r*WO + wo)*NR + j]
 *
 * for every i < MR and j < NR, where g holds NR filters' output gradients packed pixel by pixel
 * (the caller keeps the taps and filters it needs). x is the same padded, phase-split input band
 * the direct forward reads; every x read must lie inside it. The sum is formed from zero in
 * (r, wo) order, then added to c.
 */
typedef void (*fc_sconv2d_backward_weight_filter_tile_fn)(
    ptrdiff_t rows, ptrdiff_t WO, const float *x, ptrdiff_t x_row_stride,
    const ptrdiff_t *tap_offset, const float *g, float *c);
typedef void (*fc_dconv2d_backward_weight_filter_tile_fn)(
    ptrdiff_t rows, ptrdiff_t WO, const double *x, ptrdiff_t x_row_stride,
    const ptrdiff_t *tap_offset, const double *g, double *c);

#define FC_DECLARE_BACKWARD_WEIGHT_FILTER_TILE(T, NAME)                                         \
    void NAME(ptrdiff_t rows, ptrdiff_t WO, const T *x, ptrdiff_t x_row_stride,                \
              const ptrdiff_t *tap_offset, const T *g, T *c);
FC_DECLARE_BACKWARD_WEIGHT_FILTER_TILE(float, fc_sconv2d_backward_weight_filter_tile_4x16__generic)
FC_DECLARE_BACKWARD_WEIGHT_FILTER_TILE(double, fc_dconv2d_backward_weight_filter_tile_4x8__generic)
FC_DECLARE_BACKWARD_WEIGHT_FILTER_TILE(float, fc_sconv2d_backward_weight_filter_tile_6x16__avx2)
FC_DECLARE_BACKWARD_WEIGHT_FILTER_TILE(double, fc_dconv2d_backward_weight_filter_tile_6x8__avx2)
FC_DECLARE_BACKWARD_WEIGHT_FILTER_TILE(float, fc_sconv2d_backward_weight_filter_tile_14x32__avx512)
FC_DECLARE_BACKWARD_WEIGHT_FILTER_TILE(double, fc_dconv2d_backward_weight_filter_tile_14x16__avx512)
#undef FC_DECLARE_BACKWARD_WEIGHT_FILTER_TILE

/*
 * Packing of GEMM operands: dst[p*panel + i] = src[i*row_stride + p] for i < rows, p < kc, and
 * dst[p*panel + i] = 0 for rows <= i < panel (rows <= panel): `rows` rows of length kc become a
 * k-major panel of width `panel`. Reads only those elements; writes exactly kc * panel.
 */
typedef void (*fc_spack_kmajor_fn)(const float *src, ptrdiff_t row_stride, ptrdiff_t rows,
                                   ptrdiff_t kc, ptrdiff_t panel, float *dst);
typedef void (*fc_dpack_kmajor_fn)(const double *src, ptrdiff_t row_stride, ptrdiff_t rows,
                                   ptrdiff_t kc, ptrdiff_t panel, double *dst);
void fc_spack_kmajor__generic(const float *src, ptrdiff_t row_stride, ptrdiff_t rows,
                              ptrdiff_t kc, ptrdiff_t panel, float *dst);
void fc_dpack_kmajor__generic(const double *src, ptrdiff_t row_stride, ptrdiff_t rows,
                              ptrdiff_t kc, ptrdiff_t panel, double *dst);
void fc_spack_kmajor__avx2(const float *src, ptrdiff_t row_stride, ptrdiff_t rows,
                           ptrdiff_t kc, ptrdiff_t panel, float *dst);
void fc_dpack_kmajor__avx2(const double *src, ptrdiff_t row_stride, ptrdiff_t rows,
                           ptrdiff_t kc, ptrdiff_t panel, double *dst);
void fc_spack_kmajor__avx512(const float *src, ptrdiff_t row_stride, ptrdiff_t rows,
                             ptrdiff_t kc, ptrdiff_t panel, float *dst);

/*
 * Few-pixel GEMM micro-kernels, for a batch of a few pixels against filters read in place (an
 * FC layer at batch 1):
 *
 *     c[i*ldc + q] += sum_{p < kc} w[i*w_row_stride + p] * b[p*b_row_stride + q]
 *
 * for i < rows (1 <= rows <= MR: 16 floats, 8 doubles) and q < pixels (4 a pass; more take
 * more passes). Each sum starts from zero, takes p in increasing order, one FMA per product,
 * and is then added to c: bit for bit the GEMM and filter-streaming micro-kernels' blocks.
 * Reads only the first kc elements of the `rows` rows of w and the first `pixels` of b's kc
 * rows; writes only those c[i*ldc + q].
 */
typedef void (*fc_sgemm_few_pixels_ukernel_fn)(ptrdiff_t kc, const float *w,
                                               ptrdiff_t w_row_stride, ptrdiff_t rows,
                                               const float *b, ptrdiff_t b_row_stride,
                                               ptrdiff_t pixels, float *c, ptrdiff_t ldc);
typedef void (*fc_dgemm_few_pixels_ukernel_fn)(ptrdiff_t kc, const double *w,
                                               ptrdiff_t w_row_stride, ptrdiff_t rows,
                                               const double *b, ptrdiff_t b_row_stride,
                                               ptrdiff_t pixels, double *c, ptrdiff_t ldc);
void fc_sgemm_few_pixels_ukernel_16__avx2(ptrdiff_t kc, const float *w, ptrdiff_t w_row_stride,
                                          ptrdiff_t rows, const float *b,
                                          ptrdiff_t b_row_stride, ptrdiff_t pixels, float *c,
                                          ptrdiff_t ldc);
void fc_dgemm_few_pixels_ukernel_8__avx2(ptrdiff_t kc, const double *w, ptrdiff_t w_row_stride,
                                         ptrdiff_t rows, const double *b,
                                         ptrdiff_t b_row_stride, ptrdiff_t pixels, double *c,
                                         ptrdiff_t ldc);

/*
 * Few-pixel column GEMM micro-kernels, the few-pixel GEMM's transpose (dx's columns W^T @ dy for
 * 1 to 4 pixels per image):
 *
 *     c[i*ldc + q] (+)= sum_{f < kc} w[f*w_row_stride + i] * b[f*b_row_stride + q]
 *
 * for i < n and q < pixels (4 a pass). Each sum starts from zero, takes f in increasing order,
 * one FMA per product, and is then stored into c (accumulate == 0) or added to it: the packed
 * GEMM micro-kernels' blocks, bit for bit. Reads only the first n elements of w's kc rows and
 * the first `pixels` of b's; writes only those c[i*ldc + q].
 */
typedef void (*fc_sgemm_columns_few_pixels_fn)(ptrdiff_t kc, const float *w,
                                               ptrdiff_t w_row_stride, ptrdiff_t n,
                                               const float *b, ptrdiff_t b_row_stride,
                                               ptrdiff_t pixels, float *c, ptrdiff_t ldc,
                                               int accumulate);
typedef void (*fc_dgemm_columns_few_pixels_fn)(ptrdiff_t kc, const double *w,
                                               ptrdiff_t w_row_stride, ptrdiff_t n,
                                               const double *b, ptrdiff_t b_row_stride,
                                               ptrdiff_t pixels, double *c, ptrdiff_t ldc,
                                               int accumulate);
void fc_sgemm_columns_few_pixels__avx2(ptrdiff_t kc, const float *w, ptrdiff_t w_row_stride,
                                       ptrdiff_t n, const float *b, ptrdiff_t b_row_stride,
                                       ptrdiff_t pixels, float *c, ptrdiff_t ldc,
                                       int accumulate);
void fc_dgemm_columns_few_pixels__avx2(ptrdiff_t kc, const double *w, ptrdiff_t w_row_stride,
                                       ptrdiff_t n, const double *b, ptrdiff_t b_row_stride,
                                       ptrdiff_t pixels, double *c, ptrdiff_t ldc,
                                       int accumulate);

/*
 * Strided copy: dst[i] = src[i * stride] for 0 <= i < n (the column matrix of a strided layer
 * takes every stride-th input of a row). Reads and writes only those elements.
 */
typedef void (*fc_scopy_strided_fn)(const float *src, ptrdiff_t stride, ptrdiff_t n,
                                    float *dst);
typedef void (*fc_dcopy_strided_fn)(const double *src, ptrdiff_t stride, ptrdiff_t n,
                                    double *dst);
void fc_scopy_strided__generic(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst);
void fc_dcopy_strided__generic(const double *src, ptrdiff_t stride, ptrdiff_t n, double *dst);
void fc_scopy_strided__avx2(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst);
void fc_dcopy_strided__avx2(const double *src, ptrdiff_t stride, ptrdiff_t n, double *dst);
void fc_scopy_strided__avx512(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst);
void fc_dcopy_strided__avx512(const double *src, ptrdiff_t stride, ptrdiff_t n, double *dst);

/*
 * Strided add, the strided copy's adjoint: dst[i * stride] += src[i] for 0 <= i < n (col2im adds
 * a column row back at every stride-th input of a row). Reads and writes only those elements of
 * dst, each once, so the sums are the scalar loop's.
 */
typedef void (*fc_sadd_strided_fn)(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst);
typedef void (*fc_dadd_strided_fn)(const double *src, ptrdiff_t stride, ptrdiff_t n,
                                   double *dst);
void fc_sadd_strided__generic(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst);
void fc_dadd_strided__generic(const double *src, ptrdiff_t stride, ptrdiff_t n, double *dst);
void fc_sadd_strided__avx512(const float *src, ptrdiff_t stride, ptrdiff_t n, float *dst);
void fc_dadd_strided__avx512(const double *src, ptrdiff_t stride, ptrdiff_t n, double *dst);

/* Largest MR * NR over every micro-kernel: the size of a scratch tile for partial edges. */
#define FC_GEMM_MAX_TILE 448

typedef struct {
    int isa;
    const char *isa_name;
    int sgemm_mr, sgemm_nr;
    fc_sgemm_ukernel_fn sgemm_ukernel;
    const char *sgemm_ukernel_name;
    int dgemm_mr, dgemm_nr;
    fc_dgemm_ukernel_fn dgemm_ukernel;
    const char *dgemm_ukernel_name;
    fc_smaxpool2d_row_fn smaxpool2d_row;
    fc_dmaxpool2d_row_fn dmaxpool2d_row;
    int sdirect_kt, sdirect_vw;
    fc_sconv2d_direct_tile_fn sdirect_tile;
    const char *sdirect_tile_name;
    int ddirect_kt, ddirect_vw;
    fc_dconv2d_direct_tile_fn ddirect_tile;
    const char *ddirect_tile_name;
    int dw_kt, dw_tt;
    fc_sconv2d_backward_weight_tile_fn sbackward_weight_tile;
    fc_dconv2d_backward_weight_tile_fn dbackward_weight_tile;
    fc_spack_kmajor_fn spack_kmajor;
    fc_dpack_kmajor_fn dpack_kmajor;
    fc_scopy_strided_fn scopy_strided;
    fc_dcopy_strided_fn dcopy_strided;
    fc_sadd_strided_fn sadd_strided;
    fc_dadd_strided_fn dadd_strided;
    int sfilter_tile_mr, sfilter_tile_nr;
    fc_sconv2d_direct_filter_tile_fn sdirect_filter_tile;
    const char *sdirect_filter_tile_name;
    int dfilter_tile_mr, dfilter_tile_nr;
    fc_dconv2d_direct_filter_tile_fn ddirect_filter_tile;
    const char *ddirect_filter_tile_name;
    fc_sstore_filter_tile_fn sstore_filter_tile;
    fc_dstore_filter_tile_fn dstore_filter_tile;
    /* Same MR x NR as the forward's filter tiles. */
    fc_sconv2d_backward_weight_filter_tile_fn sbackward_weight_filter_tile;
    fc_dconv2d_backward_weight_filter_tile_fn dbackward_weight_filter_tile;
    int sgemm_stream_mr, sgemm_stream_nr;
    fc_sgemm_stream_ukernel_fn sgemm_stream_ukernel;
    const char *sgemm_stream_ukernel_name;
    int dgemm_stream_mr, dgemm_stream_nr;
    fc_dgemm_stream_ukernel_fn dgemm_stream_ukernel;
    const char *dgemm_stream_ukernel_name;
    fc_sconv2d_direct_single_filter_fn sdirect_single_filter;
    fc_dconv2d_direct_single_filter_fn ddirect_single_filter;
    /* NULL where the filter-streaming kernels serve few pixels too. */
    int sgemm_few_pixels_mr;
    fc_sgemm_few_pixels_ukernel_fn sgemm_few_pixels_ukernel;
    const char *sgemm_few_pixels_ukernel_name;
    int dgemm_few_pixels_mr;
    fc_dgemm_few_pixels_ukernel_fn dgemm_few_pixels_ukernel;
    const char *dgemm_few_pixels_ukernel_name;
    fc_sgemm_columns_few_pixels_fn sgemm_columns_few_pixels;
    fc_dgemm_columns_few_pixels_fn dgemm_columns_few_pixels;
} fc_kernel_table;

/* 1 when this CPU and OS can run `isa` (CPUID and XGETBV), else 0. */
int fc_cpu_supports(int isa);

/* The kernels of one ISA path; NULL for an unknown isa. Does not check fc_cpu_supports. */
const fc_kernel_table *fc_kernel_table_for(int isa);

/*
 * Direct convolution of one output row for a block of output channels, no column matrix:
 *
 *     y[k][wo] += sum_{c, fh, fw} w[k][c][fh][fw] * x[c][ho*SH + fh*DH - PH][wo*SW + fw*DW - PW]
 *
 * for 0 <= k < kb and 0 <= wo < WO, reading zero outside the input. `x` points at one image's
 * C x H x W planes (contiguous), `w` at kb filters of C x FH x FW (contiguous), `y` at row ho of
 * the first of kb output planes, whose rows are y_plane_stride apart. Accumulates into y.
 */
void fc_sconv2d_direct_row__generic(const float *x, const float *w, float *y,
                                    ptrdiff_t kb, ptrdiff_t y_plane_stride,
                                    ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                    ptrdiff_t FH, ptrdiff_t FW, ptrdiff_t WO, ptrdiff_t ho,
                                    ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                                    ptrdiff_t DH, ptrdiff_t DW);
void fc_dconv2d_direct_row__generic(const double *x, const double *w, double *y,
                                    ptrdiff_t kb, ptrdiff_t y_plane_stride,
                                    ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                                    ptrdiff_t FH, ptrdiff_t FW, ptrdiff_t WO, ptrdiff_t ho,
                                    ptrdiff_t SH, ptrdiff_t SW, ptrdiff_t PH, ptrdiff_t PW,
                                    ptrdiff_t DH, ptrdiff_t DW);

#ifdef __cplusplus
}
#endif

#endif /* FASTCONV_KERNELS_H */
