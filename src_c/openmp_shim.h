/*
 * The few OpenMP calls the Cython drivers make, with serial stand-ins when the package is built
 * without OpenMP (FASTCONV_OPENMP=0), so one source serves both builds.
 */
#ifndef FASTCONV_OPENMP_SHIM_H
#define FASTCONV_OPENMP_SHIM_H

#ifdef _OPENMP
#include <omp.h>
static inline int fc_openmp_enabled(void) { return 1; }
static inline int fc_omp_max_threads(void) { return omp_get_max_threads(); }
#else
static inline int fc_openmp_enabled(void) { return 0; }
static inline int fc_omp_max_threads(void) { return 1; }
#endif

#endif /* FASTCONV_OPENMP_SHIM_H */
