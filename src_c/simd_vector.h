/*
 * The vector interface of the *.simd.template.c kernel bodies, which simd_vector__<isa>.h defines
 * for its ISA and for the dtype FC_SINGLE selects (1: float, 0: double):
 *
 *     FC_T, FC_VEC, FC_VW (lanes), FC_VZERO(), FC_VLOADU(p), FC_VBROADCAST(p) (every lane = *p),
 *     FC_VFMADD(a, b, c) (a*b + c), FC_VADD(a, b), FC_VSTOREU(p, v), FC_VSTREAM(p, v) (a
 *     non-temporal store; p aligned to the vector's size), FC_VSUM(v) (the lanes' sum)
 *     and, for partial vectors, FC_MASK, FC_MASK_FIRST(n) (the first n <= FC_VW lanes) and
 *     FC_VLOADU_MASKZ(m, p) (lanes outside m read nothing and are zero).
 *
 * Included by each simd_vector__<isa>.h before it defines them: it undefines them all, so a file
 * may include an ISA header again for the other dtype. No include guard, on purpose.
 */
#undef FC_T
#undef FC_VEC
#undef FC_VW
#undef FC_VZERO
#undef FC_VLOADU
#undef FC_VBROADCAST
#undef FC_VFMADD
#undef FC_VADD
#undef FC_VSTOREU
#undef FC_VSTREAM
#undef FC_VSUM
#undef FC_MASK
#undef FC_MASK_FIRST
#undef FC_VLOADU_MASKZ
