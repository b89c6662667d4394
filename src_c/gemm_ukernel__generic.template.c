/*
 * Portable GEMM micro-kernel body, included once per dtype by gemm_ukernel__generic.c with
 * FC_T (element type), FC_MR, FC_NR and FC_UKERNEL (function name) defined.
 * Contract: fastconv_kernels.h. The accumulators are a fixed-size array so the compiler can keep
 * them in vector registers and vectorise the j loop with whatever SIMD the baseline target has;
 * the unroll pragmas are what makes gcc 12 do so (without them it keeps acc on the stack, 6x slower).
 */
void FC_UKERNEL(ptrdiff_t kc, const FC_T *restrict a, const FC_T *restrict b,
                FC_T *restrict c, ptrdiff_t ldc, int accumulate)
{
    FC_T acc[FC_MR][FC_NR];
#pragma GCC unroll 16
    for (int i = 0; i < FC_MR; i++)
#pragma GCC unroll 16
        for (int j = 0; j < FC_NR; j++)
            acc[i][j] = 0;
    for (ptrdiff_t p = 0; p < kc; p++) {
        const FC_T *ap = a + p * FC_MR;
        const FC_T *bp = b + p * FC_NR;
#pragma GCC unroll 16
        for (int i = 0; i < FC_MR; i++)
#pragma GCC unroll 16
            for (int j = 0; j < FC_NR; j++)
                acc[i][j] += ap[i] * bp[j];
    }
#pragma GCC unroll 16
    for (int i = 0; i < FC_MR; i++) {
        FC_T *ci = c + i * ldc;
        if (accumulate)
            for (int j = 0; j < FC_NR; j++)
                ci[j] += acc[i][j];
        else
            for (int j = 0; j < FC_NR; j++)
                ci[j] = acc[i][j];
    }
}
