/* lfm2-peak - how many vector instructions of each kind one core retires per second, and what
   that means for lfm2.h's kernels. For reading benchmark results: a kernel cannot beat these.

     make build/lfm2-peak && build/lfm2-peak      (or: cc -O2 -march=native tools/lfm2-peak.c)

   Every loop runs 12 independent chains (more than latency x throughput on current cores), plus
   one dependent chain for the FMA latency. x86 with AVX2 / AVX-512 only; elsewhere it says so.
   The clock is inferred from the dependent FMA chain assuming a 4-cycle FMA latency. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <time.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define N 100000000L
#define R12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

int main(void) {
    long i;
    double t, ymm_fma, lat;
    float sink = 0;
    __m256 gx = _mm256_set1_ps(1.0001f), gy = _mm256_set1_ps(0.9999f);
#define GDECL(j) __m256 g##j = _mm256_set1_ps((float)(j));
    R12(GDECL)
#define GFMA(j) g##j = _mm256_fmadd_ps(g##j, gx, gy);
    t = now_s();
    for (i = 0; i < N; i++) { R12(GFMA) }
    ymm_fma = 12.0 * N / (now_s() - t) / 1e9;
    t = now_s();
    for (i = 0; i < N; i++) { g0 = _mm256_fmadd_ps(g0, gx, gy); }
    lat = 1.0 * N / (now_s() - t) / 1e9;
#define GSUM(j) sink += _mm256_cvtss_f32(g##j);
    R12(GSUM)
    printf("clock (4-cycle FMA latency)   ~%.2f GHz\n", 4 * lat);
    printf("ymm FMA                        %.2f G/s = %.1f f32 GMAC/s per core\n", ymm_fma, 8 * ymm_fma);
#if defined(__AVX512F__)
    {
        double zmm_fma;
        __m512 fx = _mm512_set1_ps(1.0001f), fy = _mm512_set1_ps(0.9999f);
#define FDECL(j) __m512 f##j = _mm512_set1_ps((float)(j));
        R12(FDECL)
#define FFMA(j) f##j = _mm512_fmadd_ps(f##j, fx, fy);
        t = now_s();
        for (i = 0; i < N; i++) { R12(FFMA) }
        zmm_fma = 12.0 * N / (now_s() - t) / 1e9;
#define FSUM(j) sink += _mm512_cvtss_f32(f##j);
        R12(FSUM)
        printf("zmm FMA                        %.2f G/s = %.1f f32 GMAC/s per core%s\n", zmm_fma, 16 * zmm_fma,
               zmm_fma < 0.75 * ymm_fma ? "  (512-bit ops double-pumped)" : "");
        printf("  -> f32/bf16/f16 weights, exact path: at most %.0f GMAC/s per core\n", 16 * (zmm_fma > ymm_fma / 2 ? zmm_fma : ymm_fma / 2));
    }
#endif
#if defined(__AVX512VNNI__)
    {
        double dp;
        __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(5);
#define IDECL(j) __m512i a##j = _mm512_set1_epi32(j);
        R12(IDECL)
#define IDP(j) a##j = _mm512_dpbusd_epi32(a##j, x, y);
        t = now_s();
        for (i = 0; i < N; i++) { R12(IDP) }
        dp = 12.0 * N / (now_s() - t) / 1e9;
#define ISUM(j) sink += (float)_mm_cvtsi128_si32(_mm512_castsi512_si128(a##j));
        R12(ISUM)
        printf("zmm vpdpbusd (VNNI)            %.2f G/s = %.1f int8 GMAC/s per core\n", dp, 64 * dp);
    }
#endif
#if defined(__AVX512BF16__)
    {
        double bf;
        __m512bh bx = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1.0f), _mm512_set1_ps(0.5f));
#define BDECL(j) __m512 b##j = _mm512_set1_ps((float)(j));
        R12(BDECL)
#define BDP(j) b##j = _mm512_dpbf16_ps(b##j, bx, bx);
        t = now_s();
        for (i = 0; i < N; i++) { R12(BDP) }
        bf = 12.0 * N / (now_s() - t) / 1e9;
#define BSUM(j) sink += _mm512_cvtss_f32(b##j);
        R12(BSUM)
        printf("zmm vdpbf16ps (AVX512_BF16)    %.2f G/s = %.1f bf16 GMAC/s per core\n", bf, 32 * bf);
    }
#endif
    printf("(checksum %g)\n", (double)sink);
    return 0;
}
#else
int main(void) {
    puts("lfm2-peak: built without AVX2+FMA (x86 -march=native needed); nothing to measure");
    return 0;
}
#endif
