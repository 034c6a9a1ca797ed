/* fuzz target: lfm2_context_decode / decode_all / reset / state save+load with arbitrary token
   ids and chunk lengths on the micro32 model of fuzz_micro.h (conv + attention layer, hidden 32,
   vocab 32; loaded once from memory: a few thousand inputs a second), small n_ctx.
   Input: byte 0 -> n_ctx = 1 + b % 16, byte 1 -> n_batch = 1 + b % 8 and (bit 7) bf16_activations,
   then up to 16 ops:
     op % 6 == 0 decode      n = next byte % (n_ctx + 3), then n ids of 2 bytes each
             1 decode_all    same
             2 reset
             3 state save -> load into a second context; both decode the same token: identical
             4 state_load of fuzzed bytes (next byte = length, optionally behind a valid header)
             5 set_threads   1 + next byte % 2
   At most 64 tokens run through the model per input (the rest of the ops still run).
   An id is u16 % (V + 4) - 2 (so -2, -1, V, V + 1 occur), 0xffff = INT32_MIN, 0xfffe = INT32_MAX.
   Invariants: the documented result for every call (INVALID_ARG for n < 1 or a bad id, checked
   before CONTEXT_FULL when n > n_ctx - pos), the position, finite logits, decode_all's last row
   == the context's logits. */
#define LFM2_IMPLEMENTATION
#ifdef FUZZ_LFM2_H
#include FUZZ_LFM2_H
#else
#include "../../lfm2.h"
#endif
#include "fuzz_common.h"
#include "fuzz_micro.h"

static lfm2_model *g_m;

typedef struct { const uint8_t *p; size_t n, i; } fz_in;
static int fz_byte(fz_in *in) { return in->i < in->n ? in->p[in->i++] : -1; }

static void fz_check_logits(const float *lg, int32_t V) {
    int32_t i;
    FUZZ_ASSERT(lg != NULL);
    for (i = 0; i < V; i++) FUZZ_ASSERT(lg[i] == lg[i] && lg[i] > -1e30f && lg[i] < 1e30f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_in in;
    lfm2_context_params cp;
    lfm2_context *c = NULL, *c2 = NULL;
    int32_t V, n_ctx, op_count = 0, budget = 64; /* tokens run through the model per input (speed) */
    int b;
    if (!g_m) g_m = fuzz_load_micro32();
    if (size < 2) return 0;
    in.p = data; in.n = size; in.i = 0;
    V = lfm2_model_config(g_m)->vocab_size;
    memset(&cp, 0, sizeof cp);
    cp.n_ctx = n_ctx = 1 + fz_byte(&in) % 16;
    b = fz_byte(&in);
    cp.n_batch = 1 + b % 8;
    cp.bf16_activations = (b >> 7) & 1; /* the bf16 dot-product path where the build has one */
    cp.n_threads = 1;
    FUZZ_ASSERT(lfm2_context_create(g_m, &cp, &c) == LFM2_OK);
    FUZZ_ASSERT(lfm2_context_create(g_m, &cp, &c2) == LFM2_OK);
    while ((b = fz_byte(&in)) >= 0 && op_count++ < 16) {
        int op = b % 6;
        if (op == 0 || op == 1) {
            int32_t n = 0, k, bad = 0, pos0 = lfm2_context_pos(c), want;
            lfm2_token ids[40];
            const float *lg = NULL;
            lfm2_result rc;
            int nb = fz_byte(&in);
            if (nb < 0) break;
            n = nb % (n_ctx + 3);
            if (n > budget && n <= n_ctx - lfm2_context_pos(c)) n = budget > 0 ? budget : 0; /* over-long calls are kept: refused */
            budget -= n;
            for (k = 0; k < n; k++) {
                int lo = fz_byte(&in), hi = fz_byte(&in);
                uint32_t raw;
                if (hi < 0) { n = k; break; }
                raw = (uint32_t)lo | ((uint32_t)hi << 8);
                ids[k] = raw == 0xffff ? INT32_MIN : raw == 0xfffe ? INT32_MAX : (lfm2_token)(raw % (uint32_t)(V + 4)) - 2;
                if (ids[k] < 0 || ids[k] >= V) bad = 1;
            }
            want = (n < 1 || bad) ? LFM2_ERR_INVALID_ARG : (n > n_ctx - pos0) ? LFM2_ERR_CONTEXT_FULL : LFM2_OK;
            if (op == 0) {
                rc = lfm2_context_decode(c, n ? ids : NULL, n, &lg);
                FUZZ_ASSERT((int)rc == want);
                if (rc == LFM2_OK) fz_check_logits(lg, V);
                else FUZZ_ASSERT(lg == NULL && lfm2_context_error(c)[0] != 0);
            } else {
                float *all = (float *)malloc(sizeof(float) * (size_t)V * (size_t)(n ? n : 1));
                rc = lfm2_context_decode_all(c, n ? ids : NULL, n, all);
                FUZZ_ASSERT((int)rc == want);
                if (rc == LFM2_OK) {
                    fz_check_logits(all + (size_t)(n - 1) * (size_t)V, V);
                    FUZZ_ASSERT(memcmp(all + (size_t)(n - 1) * (size_t)V, lfm2_context_logits(c), sizeof(float) * (size_t)V) == 0);
                }
                free(all);
            }
            FUZZ_ASSERT(lfm2_context_pos(c) == pos0 + (rc == LFM2_OK ? n : 0));
        } else if (op == 2) {
            lfm2_context_reset(c);
            FUZZ_ASSERT(lfm2_context_pos(c) == 0 && lfm2_context_logits(c) == NULL);
        } else if (op == 3) {
            size_t need = lfm2_context_state_size(c), w = 0;
            unsigned char *st = (unsigned char *)malloc(need);
            lfm2_token t = 5;
            const float *l1 = NULL, *l2 = NULL;
            FUZZ_ASSERT(lfm2_context_state_save(c, st, need - 1, &w) == LFM2_ERR_BUFFER_TOO_SMALL && w == need);
            FUZZ_ASSERT(lfm2_context_state_save(c, st, need, &w) == LFM2_OK && w == need);
            FUZZ_ASSERT(lfm2_context_state_load(c2, st, need - 1) != LFM2_OK);
            FUZZ_ASSERT(lfm2_context_state_load(c2, st, need) == LFM2_OK);
            FUZZ_ASSERT(lfm2_context_pos(c2) == lfm2_context_pos(c));
            if (lfm2_context_pos(c) < n_ctx && budget > 0) {
                budget -= 2;
                FUZZ_ASSERT(lfm2_context_decode(c, &t, 1, &l1) == LFM2_OK);
                FUZZ_ASSERT(lfm2_context_decode(c2, &t, 1, &l2) == LFM2_OK);
                FUZZ_ASSERT(memcmp(l1, l2, sizeof(float) * (size_t)V) == 0);
            }
            free(st);
        } else if (op == 4) {
            int ln = fz_byte(&in), hdr = ln >= 0 && (ln & 1);
            size_t n, k;
            unsigned char *st;
            int32_t pos0 = lfm2_context_pos(c2);
            lfm2_result rc;
            if (ln < 0) break;
            n = (size_t)ln * 4;
            st = (unsigned char *)malloc(n + 40);
            for (k = 0; k < n; k++) { int x = fz_byte(&in); st[k] = (unsigned char)(x < 0 ? 0 : x); }
            if (hdr && n >= sizeof(uint32_t) * LFM2__STATE_HDR) { /* a valid header with fuzzed pos / has_logits */
                uint32_t h[LFM2__STATE_HDR];
                lfm2__state_header(c2, 0, 0, h);
                memcpy(st, h, 32);                     /* magic .. vocab */
                memcpy(st + 40, h + 10, sizeof h - 40); /* the model's fingerprint */
            }
            rc = lfm2_context_state_load(c2, st, n);
            if (rc != LFM2_OK) FUZZ_ASSERT(lfm2_context_pos(c2) == pos0);
            else FUZZ_ASSERT(lfm2_context_pos(c2) <= n_ctx);
            free(st);
        } else {
            int t = fz_byte(&in);
            lfm2_context_set_threads(c, 1 + (t < 0 ? 0 : t % 2));
        }
    }
    lfm2_context_free(c);
    lfm2_context_free(c2);
    return 0;
}
