/*
 * Max-pooling of one output row (float and double), compiled with the avx2 flags; the body is
 * maxpool2d_row.template.c. Contract: fastconv_kernels.h.
 */
#include <math.h>
#include <stdint.h>

#include "fastconv_kernels.h"

#define FC_T float
#define FC_MAXPOOL2D_ROW fc_smaxpool2d_row__avx2
#include "maxpool2d_row.template.c"
#undef FC_T
#undef FC_MAXPOOL2D_ROW

#define FC_T double
#define FC_MAXPOOL2D_ROW fc_dmaxpool2d_row__avx2
#include "maxpool2d_row.template.c"
