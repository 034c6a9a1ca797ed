/* lfm2 - run an LFM2 model from a Hugging Face folder: one-shot prompts, plain completion, or an
   interactive multi-turn chat that keeps the model's cache between turns.

       lfm2 -m LFM2-350M -p "What is C. elegans?"
       lfm2 -m LFM2-350M -i --system "You are terse."
       lfm2 -m models/demo-code-8m --raw --temp 0 -p "def fibonacci(n):"

   Build: make build/lfm2  (or: cc -O2 -march=native -fopenmp -o lfm2 examples/lfm2.c -lm)
   -march=native: the SIMD kernels (AVX-512 / AVX2 / NEON) are chosen at compile time, so a build
   without it runs the scalar ones, ~5x slower (--verbose prints the kernel set); -fopenmp: the
   threads of -t (without it: one thread). */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* sigaction, clock_gettime, isatty */
#endif
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if !defined(__wasi__) /* wasi-libc has no signals (only an emulation, -D_WASI_EMULATED_SIGNAL) */
#include <signal.h>
#define LFM2_CLI_SIGNALS 1
#endif
#include <time.h>
#include <errno.h>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#define LFM2_CLI_POSIX 1
#else
#define _exit _Exit
#endif

/* ---- Ctrl-C: stops the current answer (the prompt's prefill included), not the program; a
   second Ctrl-C before the answer has stopped exits with status 130 ---------------------------- */
#ifdef LFM2_CLI_SIGNALS
static volatile sig_atomic_t g_interrupted = 0;
#else
static volatile int g_interrupted = 0; /* (no Ctrl-C without signals) */
#endif

#ifdef LFM2_CLI_SIGNALS
static void on_sigint(int sig) {
    (void)sig;
    if (g_interrupted) _exit(130);
    g_interrupted = 1;
#ifndef LFM2_CLI_POSIX
    signal(SIGINT, on_sigint); /* some platforms reset the handler on delivery */
#endif
}
static void install_sigint(void) {
#ifdef LFM2_CLI_POSIX
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: Ctrl-C at the input prompt ends the program */
    sigaction(SIGINT, &sa, NULL);
#else
    signal(SIGINT, on_sigint);
#endif
}
#else
static void install_sigint(void) {}
#endif

static double now_s(void) {
#ifdef LFM2_CLI_POSIX
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

/* ---- options ------------------------------------------------------------------------------- */
typedef struct options {
    const char *model_dir, *prompt, *system;
    int interactive, raw, bos, verbose, weights;
    int32_t n_predict, n_threads, n_ctx;
    lfm2_sampler_params sp;
    int seed_given;
} options;

static void usage(FILE *f) {
    lfm2_sampler_params d = lfm2_sampler_default_params();
    fprintf(f,
        "usage: lfm2 -m DIR (-p PROMPT | -i) [options]\n"
        "Runs an LFM2 model from a Hugging Face folder (config.json, model*.safetensors, tokenizer.json).\n"
        "\n"
        "  -m, --model DIR         model folder (required)\n"
        "  -p, --prompt TEXT       one-shot: answer TEXT as a chat user turn, print, exit\n"
        "  -i, --interactive       multi-turn chat on stdin; /reset starts over, /quit or end of input\n"
        "                          exits, Ctrl-C stops the current answer\n"
        "      --raw               no chat template: continue the prompt text as it is (plain completion)\n"
        "      --bos               with --raw: start the text with the BOS token\n"
        "      --system TEXT       system prompt (chat mode)\n"
        "  -n, --n-predict N       most tokens per answer, 0 = until the end of the answer or a full\n"
        "                          context (default 1024)\n"
        "      --temp T            temperature, 0 = greedy (default %.2g)\n"
        "      --top-k K           keep the K most likely tokens, 0 = off (default %d)\n"
        "      --top-p P           nucleus sampling, 1 = off (default 1)\n"
        "      --min-p P           drop tokens below P x the top probability, 0 = off (default %.2g)\n"
        "      --repeat-penalty R  repetition penalty over the whole conversation, 1 = off (default %.3g)\n"
        "  -s, --seed N            random seed (default: from the clock)\n"
        "  -t, --threads N         CPU threads (default: all)\n"
        "  -c, --ctx N             context size in tokens (default: min(4096, the model's maximum))\n"
        "      --weights W         q8 or q4: quantize the weights at load time (default: as stored)\n"
        "      --verbose           print load time and prefill / decode speed to stderr\n"
        "  -h, --help              this text\n"
        "The sampling defaults are the LFM2 model-card recipe as transformers' generate() applies it.\n",
        (double)d.temperature, (int)d.top_k, (double)d.min_p, (double)d.repetition_penalty);
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    long v;
    if (!s || !*s) return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}
static int parse_float(const char *s, double lo, double hi, float *out) {
    char *end;
    double v;
    if (!s || !*s) return 0;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi)) return 0;
    *out = (float)v;
    return 1;
}
static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    unsigned long long v;
    if (!s || !*s || *s == '-') return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end) return 0;
    *out = (uint64_t)v;
    return 1;
}

/* Returns 0 on success, 1 on a usage error (message printed), 2 for --help. */
static int parse_args(int argc, char **argv, options *o) {
    int i;
    memset(o, 0, sizeof *o);
    o->sp = lfm2_sampler_default_params();
    o->n_predict = 1024;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        long n;
#define NEEDS_VALUE() do { if (!v) { fprintf(stderr, "lfm2: option %s needs a value (see --help)\n", a); return 1; } i++; } while (0)
#define BAD_VALUE(what) do { fprintf(stderr, "lfm2: bad value '%s' for %s: %s\n", v, a, what); return 1; } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 2;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { NEEDS_VALUE(); o->model_dir = v; }
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { NEEDS_VALUE(); o->prompt = v; }
        else if (!strcmp(a, "--system")) { NEEDS_VALUE(); o->system = v; }
        else if (!strcmp(a, "-i") || !strcmp(a, "--interactive")) o->interactive = 1;
        else if (!strcmp(a, "--raw")) o->raw = 1;
        else if (!strcmp(a, "--bos")) o->bos = 1;
        else if (!strcmp(a, "--verbose")) o->verbose = 1;
        else if (!strcmp(a, "--weights")) {
            NEEDS_VALUE();
            if (!strcmp(v, "q8")) o->weights = LFM2_WEIGHTS_Q8;
            else if (!strcmp(v, "q4")) o->weights = LFM2_WEIGHTS_Q4;
            else if (!strcmp(v, "stored")) o->weights = LFM2_WEIGHTS_AS_STORED;
            else BAD_VALUE("expected q8, q4 or stored");
        }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            NEEDS_VALUE();
            if (!parse_long(v, -1, INT32_MAX, &n)) BAD_VALUE("expected an integer >= -1");
            o->n_predict = n < 0 ? 0 : (int32_t)n;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            NEEDS_VALUE();
            if (!parse_long(v, 1, 4096, &n)) BAD_VALUE("expected an integer from 1 to 4096");
            o->n_threads = (int32_t)n;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            NEEDS_VALUE();
            if (!parse_long(v, 1, INT32_MAX, &n)) BAD_VALUE("expected a positive integer");
            o->n_ctx = (int32_t)n;
        } else if (!strcmp(a, "--temp")) {
            NEEDS_VALUE();
            if (!parse_float(v, 0.0, 1e6, &o->sp.temperature)) BAD_VALUE("expected a number >= 0");
        } else if (!strcmp(a, "--top-k")) {
            NEEDS_VALUE();
            if (!parse_long(v, 0, INT32_MAX, &n)) BAD_VALUE("expected an integer >= 0");
            o->sp.top_k = (int32_t)n;
        } else if (!strcmp(a, "--top-p")) {
            NEEDS_VALUE();
            if (!parse_float(v, 0.0, 1.0, &o->sp.top_p)) BAD_VALUE("expected a number from 0 to 1");
        } else if (!strcmp(a, "--min-p")) {
            NEEDS_VALUE();
            if (!parse_float(v, 0.0, 1.0, &o->sp.min_p)) BAD_VALUE("expected a number from 0 to 1");
        } else if (!strcmp(a, "--repeat-penalty")) {
            NEEDS_VALUE();
            if (!parse_float(v, 1e-6, 1e6, &o->sp.repetition_penalty)) BAD_VALUE("expected a number > 0");
        } else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) {
            NEEDS_VALUE();
            if (!parse_u64(v, &o->sp.seed)) BAD_VALUE("expected a non-negative integer");
            o->seed_given = 1;
        } else {
            fprintf(stderr, "lfm2: unknown option '%s' (see --help)\n", a);
            return 1;
        }
#undef NEEDS_VALUE
#undef BAD_VALUE
    }
    if (!o->model_dir) { fprintf(stderr, "lfm2: no model folder given: use -m DIR (see --help)\n"); return 1; }
    if (!o->prompt && !o->interactive) { fprintf(stderr, "lfm2: nothing to do: give -p PROMPT or -i (see --help)\n"); return 1; }
    if (o->prompt && o->interactive) { fprintf(stderr, "lfm2: -p and -i cannot be combined\n"); return 1; }
    if (o->raw && o->interactive) { fprintf(stderr, "lfm2: --raw is for one-shot completion (-p), not -i\n"); return 1; }
    if (o->bos && !o->raw) { fprintf(stderr, "lfm2: --bos only applies with --raw (the chat template adds BOS itself)\n"); return 1; }
    if (o->system && o->raw) { fprintf(stderr, "lfm2: --system needs the chat template (not --raw)\n"); return 1; }
    return 0;
}

/* ---- output: every write is checked; a failure (full disk, closed stdout) is reported once ---- */
static int g_out_errno = 0; /* errno of the first failed write to stdout (0: none) */

static int out_write(const void *p, size_t n) {
    if (g_out_errno) return 0;
    errno = 0;
    if ((n > 0 && fwrite(p, 1, n, stdout) != n) || fflush(stdout) != 0) g_out_errno = errno ? errno : EIO;
    return g_out_errno == 0;
}
/* Flushes stdout; 1 (after one line on stderr) if any output was lost. */
static int out_failed(void) {
    if (!g_out_errno && (fflush(stdout) != 0 || ferror(stdout))) g_out_errno = errno ? errno : EIO;
    if (g_out_errno) fprintf(stderr, "lfm2: cannot write the output: %s\n", strerror(g_out_errno));
    return g_out_errno != 0;
}

/* ---- generation with streaming output ------------------------------------------------------ */
typedef struct stream_state {
    double t_first;   /* when the first token arrived (prefill + first sample done) */
    int32_t n;
} stream_state;

static int on_token(void *user, lfm2_token t, const char *text, size_t len) {
    stream_state *st = (stream_state *)user;
    (void)t;
    if (st->n == 0) st->t_first = now_s();
    if (t >= 0) st->n++;
    return !out_write(text, len); /* a lost write stops the answer */
}
static int should_abort(void *user) {
    (void)user;
    return g_interrupted != 0;
}

typedef struct session {
    const options *o;
    lfm2_model *m;
    lfm2_context *c;
    lfm2_sampler *s;
    lfm2_token *ids;      /* tokenize buffer */
    int32_t ids_cap;
    char *text;           /* formatting buffer */
    size_t text_cap;
} session;

static int grow_text(session *S, size_t need) {
    char *p;
    if (need <= S->text_cap) return 1;
    p = (char *)realloc(S->text, need);
    if (!p) return 0;
    S->text = p;
    S->text_cap = need;
    return 1;
}

/* Tokenizes text[0..len) into S->ids. */
static int tokenize(session *S, const char *text, size_t len, int flags, int32_t *n) {
    int32_t bound = lfm2_tokenize_bound(S->m, len, flags);
    lfm2_result rc;
    if (bound < 0) { fprintf(stderr, "lfm2: text too long to tokenize\n"); return 0; }
    if (bound > S->ids_cap) {
        lfm2_token *p = (lfm2_token *)realloc(S->ids, (size_t)(bound > 0 ? bound : 1) * sizeof(lfm2_token));
        if (!p) { fprintf(stderr, "lfm2: out of memory\n"); return 0; }
        S->ids = p;
        S->ids_cap = bound;
    }
    rc = lfm2_tokenize(S->m, text, len, flags, S->ids, S->ids_cap, n);
    if (rc != LFM2_OK) { fprintf(stderr, "lfm2: tokenize: %s\n", lfm2_result_string(rc)); return 0; }
    return 1;
}

/* Prefills ids and streams the answer. Returns 0 on success or a soft stop (Ctrl-C, full
   context: reported), 1 on a hard error. */
static int run_turn(session *S, int32_t n_ids) {
    lfm2_generate_params gp;
    lfm2_generate_result res;
    lfm2_error err;
    stream_state st;
    lfm2_result rc;
    double t0;
    memset(&gp, 0, sizeof gp);
    memset(&err, 0, sizeof err);
    memset(&st, 0, sizeof st);
    gp.max_tokens = S->o->n_predict;
    gp.on_token = on_token;
    gp.should_abort = should_abort;
    gp.user = &st;
    gp.error = &err;
    t0 = now_s();
    rc = lfm2_generate(S->c, S->s, S->ids, n_ids, &gp, &res);
    {
        double t1 = now_s();
        out_write("\n", 1);
        if (S->o->verbose) {
            double tp = (st.n > 0 ? st.t_first : t1) - t0, td = t1 - st.t_first;
            fprintf(stderr, "[prefill %d tokens in %.3f s, %.1f tok/s", (int)res.n_prompt, tp, tp > 0 ? res.n_prompt / tp : 0.0);
            if (st.n > 1 && td > 0) fprintf(stderr, "; decode %d tokens in %.3f s, %.1f tok/s", (int)(st.n - 1), td, (st.n - 1) / td);
            fprintf(stderr, "; context %d/%d]\n", (int)lfm2_context_pos(S->c), (int)lfm2_context_n_ctx(S->c));
        }
    }
    if (g_out_errno) return 1; /* reported by main */
    if (rc == LFM2_ERR_ABORTED) { fprintf(stderr, "[stopped]\n"); return 0; }
    if (rc == LFM2_ERR_CONTEXT_FULL) {
        fprintf(stderr, "lfm2: %s%s\n", err.message, S->o->interactive ? " (/reset to start over)" : "");
        return res.n_prompt == 0 && !S->o->interactive; /* a prompt that never fitted is an error */
    }
    if (rc != LFM2_OK) { fprintf(stderr, "lfm2: %s\n", err.message[0] ? err.message : lfm2_result_string(rc)); return 1; }
    return 0;
}

/* The chat text of one user turn. The first turn is rendered by lfm2_chat_format (BOS, optional
   system message); a later turn continues the cache, which holds "...<|im_start|>assistant\n"
   followed by the previous answer without its <|im_end|>, so it starts by closing that answer the
   way the template renders it. */
static int format_turn(session *S, int first, const char *user, size_t *len) {
    if (first) {
        lfm2_chat_message msgs[2];
        int32_t n = 0;
        size_t need = 0;
        if (S->o->system && S->o->system[0]) { msgs[n].role = "system"; msgs[n].content = S->o->system; n++; }
        msgs[n].role = "user";
        msgs[n].content = user;
        n++;
        lfm2_chat_format(msgs, n, NULL, 0, 1, NULL, 0, &need);
        if (!grow_text(S, need + 1)) return 0;
        if (lfm2_chat_format(msgs, n, NULL, 0, 1, S->text, S->text_cap, len) != LFM2_OK) return 0;
    } else {
        static const char pre[] = "<|im_end|>\n<|im_start|>user\n", post[] = "<|im_end|>\n<|im_start|>assistant\n";
        size_t lu = strlen(user);
        if (!grow_text(S, sizeof pre + lu + sizeof post)) return 0;
        memcpy(S->text, pre, sizeof pre - 1);
        memcpy(S->text + sizeof pre - 1, user, lu);
        memcpy(S->text + sizeof pre - 1 + lu, post, sizeof post - 1);
        *len = sizeof pre - 1 + lu + sizeof post - 1;
    }
    return 1;
}

/* Reads one line of any length from stdin into *buf (without the newline). 0 at end of input. */
static int read_line(char **buf, size_t *cap) {
    size_t n = 0;
    int ch;
    if (!*buf) { *cap = 256; *buf = (char *)malloc(*cap); if (!*buf) return 0; }
    while ((ch = getchar()) != EOF && ch != '\n') {
        if (n + 1 >= *cap) {
            char *p = (char *)realloc(*buf, *cap * 2);
            if (!p) return 0;
            *buf = p;
            *cap *= 2;
        }
        (*buf)[n++] = (char)ch;
    }
    (*buf)[n] = 0;
    if (n > 0 && (*buf)[n - 1] == '\r') (*buf)[--n] = 0;
    return ch != EOF || n > 0;
}

static int interactive(session *S) {
    char *line = NULL;
    size_t cap = 0;
    int first = 1, tty = 0, rc = 0;
#ifdef LFM2_CLI_POSIX
    tty = isatty(fileno(stdin));
#endif
    if (tty) fprintf(stderr, "chat: type a message, /reset to start over, /quit or Ctrl-D to leave, Ctrl-C stops an answer\n");
    for (;;) {
        size_t len = 0;
        int32_t n = 0;
        if (tty && !out_write("> ", 2)) { rc = 1; break; }
        g_interrupted = 0;
        if (!read_line(&line, &cap)) { /* end of input, or Ctrl-C at the prompt */
            if (g_interrupted) rc = 130;
            break;
        }
        if (line[0] == 0) continue;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
        if (!strcmp(line, "/reset")) {
            lfm2_context_reset(S->c);
            lfm2_sampler_reset(S->s);
            first = 1;
            fprintf(stderr, "[conversation reset]\n");
            continue;
        }
        if (!format_turn(S, first, line, &len)) { fprintf(stderr, "lfm2: out of memory\n"); rc = 1; break; }
        if (!tokenize(S, S->text, len, LFM2_TOKENIZE_PARSE_SPECIAL, &n)) { rc = 1; break; }
        if (run_turn(S, n)) { rc = 1; break; }
        if (lfm2_context_pos(S->c) > 0) first = 0; /* the turn is in the cache */
    }
    free(line);
    return rc;
}

int main(int argc, char **argv) {
    options o;
    session S;
    lfm2_error err;
    lfm2_model_params mp;
    lfm2_context_params cp;
    lfm2_result rc;
    int r, status = 0;
    double t0;

    r = parse_args(argc, argv, &o);
    if (r == 2) { usage(stdout); return out_failed() ? 1 : 0; }
    if (r) return 2;
    if (!o.seed_given) o.sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);

    memset(&S, 0, sizeof S);
    S.o = &o;
    memset(&err, 0, sizeof err);
    memset(&mp, 0, sizeof mp);
    mp.error = &err;
    mp.weights = o.weights;
    t0 = now_s();
    rc = lfm2_model_load_dir(o.model_dir, &mp, &S.m);
    if (rc != LFM2_OK) { fprintf(stderr, "lfm2: cannot load model '%s': %s\n", o.model_dir, err.message); return 1; }
    if (lfm2_tokenizer_size(S.m) <= 0) {
        fprintf(stderr, "lfm2: '%s' has no tokenizer.json: the CLI needs one\n", o.model_dir);
        lfm2_model_free(S.m);
        return 1;
    }
    memset(&cp, 0, sizeof cp);
    cp.n_ctx = o.n_ctx;
    cp.n_threads = o.n_threads;
    cp.error = &err;
    rc = lfm2_context_create(S.m, &cp, &S.c);
    if (rc != LFM2_OK) { fprintf(stderr, "lfm2: cannot create a context: %s\n", err.message); lfm2_model_free(S.m); return 1; }
    rc = lfm2_sampler_create(&o.sp, lfm2_model_config(S.m)->vocab_size, NULL, &S.s);
    if (rc != LFM2_OK) {
        fprintf(stderr, "lfm2: cannot create the sampler: %s\n", lfm2_result_string(rc));
        lfm2_context_free(S.c);
        lfm2_model_free(S.m);
        return 1;
    }
    if (o.verbose) {
        const lfm2_config *cfg = lfm2_model_config(S.m);
        fprintf(stderr, "[loaded %s in %.3f s: %d layers, hidden %d, vocab %d, %.1fM parameters; context %d; kernels %s]\n",
                o.model_dir, now_s() - t0, (int)cfg->num_hidden_layers, (int)cfg->hidden_size, (int)cfg->vocab_size,
                (double)lfm2_config_param_count(cfg) / 1e6, (int)lfm2_context_n_ctx(S.c), lfm2_build_info());
        fprintf(stderr, "[sampling: temp %g, top-k %d, top-p %g, min-p %g, repeat-penalty %g, seed %llu]\n",
                (double)o.sp.temperature, (int)o.sp.top_k, (double)o.sp.top_p, (double)o.sp.min_p,
                (double)o.sp.repetition_penalty, (unsigned long long)o.sp.seed);
    }
    install_sigint();

    if (o.interactive) {
        status = interactive(&S);
    } else {
        size_t len = 0;
        int32_t n = 0;
        int ok;
        if (o.raw) {
            len = strlen(o.prompt);
            ok = tokenize(&S, o.prompt, len, o.bos ? LFM2_TOKENIZE_ADD_BOS : 0, &n);
            if (ok && n == 0) { fprintf(stderr, "lfm2: the prompt is empty\n"); ok = 0; }
            if (ok && n > lfm2_context_n_ctx(S.c)) {
                fprintf(stderr, "lfm2: the prompt has %d tokens, more than the context of %d (-c)\n", (int)n, (int)lfm2_context_n_ctx(S.c));
                ok = 0;
            }
            if (ok) ok = out_write(o.prompt, len); /* completion: show the text it continues */
        } else {
            ok = format_turn(&S, 1, o.prompt, &len) && tokenize(&S, S.text, len, LFM2_TOKENIZE_PARSE_SPECIAL, &n);
        }
        status = ok ? run_turn(&S, n) : 1;
        if (g_interrupted && !g_out_errno) status = 130; /* Ctrl-C in one-shot mode: the shell's convention */
    }
    if (out_failed()) status = 1;

    free(S.ids);
    free(S.text);
    lfm2_sampler_free(S.s);
    lfm2_context_free(S.c);
    lfm2_model_free(S.m);
    return status;
}
