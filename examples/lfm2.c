/* lfm2 - run an LFM2 model from a Hugging Face folder: one-shot prompts, plain completion, or an
   interactive multi-turn chat that keeps the model's cache between turns.

       lfm2 -m LFM2-350M -p "What is C. elegans?"
       lfm2 -m LFM2-350M -i --system "You are terse."
       lfm2 -m models/demo-code-8m --raw --temp 0 -p "def fibonacci(n):"
       lfm2 -m LFM2.5-1.2B-Instruct --tools tools.json -p "Weather in Paris?"   (tool calls as JSON
           lines on stdout; each result is then read as one line from stdin and the answer goes on)

   Build: make build/lfm2  (or: cc -O2 -march=native -fopenmp -o lfm2 examples/lfm2.c -lm)
   -march=native: the SIMD kernels (AVX-512 / AVX2 / NEON) are chosen at compile time, so a build
   without it runs the scalar ones, ~5x slower (--verbose prints the kernel set); -fopenmp: the
   threads of -t (without it: one thread). */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* sigaction, clock_gettime, isatty */
#endif
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
#include "../tools/lfm2_chat_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
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
static volatile sig_atomic_t g_interrupted = 0;

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
    const char *model_dir, *prompt, *system, *tools_path, *template_name;
    int interactive, raw, bos, verbose, weights, hide_reasoning;
    unsigned sp_given;  /* sampling options given on the command line (bits: temp, top-k, top-p, min-p, penalty) */
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
        "      --tools FILE        a JSON list of tool schemas: the model may call them; each call is\n"
        "                          printed as a JSON line {\"tool_call\": {\"name\": ..., \"arguments\": {...}}}\n"
        "                          and its result is read as one line from stdin, then the answer goes on\n"
        "      --reasoning show|hide  print the model's <think> reasoning or not (default show)\n"
        "      --template NAME     lfm2, lfm2-tools or lfm2.5 instead of the folder's chat template\n"
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
        "The sampling defaults are the model's generation_config.json recipe where it has one (LFM2.5),\n"
        "else the LFM2 model-card recipe, as transformers' generate() applies them.\n",
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
        else if (!strcmp(a, "--tools")) { NEEDS_VALUE(); o->tools_path = v; }
        else if (!strcmp(a, "--template")) {
            NEEDS_VALUE();
            if (lfm2_chat_template_from_name(v) == LFM2_CHAT_TEMPLATE_UNKNOWN) BAD_VALUE("expected lfm2, lfm2-tools or lfm2.5");
            o->template_name = v;
        } else if (!strcmp(a, "--reasoning")) {
            NEEDS_VALUE();
            if (!strcmp(v, "show")) o->hide_reasoning = 0;
            else if (!strcmp(v, "hide")) o->hide_reasoning = 1;
            else BAD_VALUE("expected show or hide");
        }
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
            o->sp_given |= 1;
        } else if (!strcmp(a, "--top-k")) {
            NEEDS_VALUE();
            if (!parse_long(v, 0, INT32_MAX, &n)) BAD_VALUE("expected an integer >= 0");
            o->sp.top_k = (int32_t)n;
            o->sp_given |= 2;
        } else if (!strcmp(a, "--top-p")) {
            NEEDS_VALUE();
            if (!parse_float(v, 0.0, 1.0, &o->sp.top_p)) BAD_VALUE("expected a number from 0 to 1");
            o->sp_given |= 4;
        } else if (!strcmp(a, "--min-p")) {
            NEEDS_VALUE();
            if (!parse_float(v, 0.0, 1.0, &o->sp.min_p)) BAD_VALUE("expected a number from 0 to 1");
            o->sp_given |= 8;
        } else if (!strcmp(a, "--repeat-penalty")) {
            NEEDS_VALUE();
            if (!parse_float(v, 1e-6, 1e6, &o->sp.repetition_penalty)) BAD_VALUE("expected a number > 0");
            o->sp_given |= 16;
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
    if ((o->tools_path || o->template_name) && o->raw) { fprintf(stderr, "lfm2: --tools and --template need the chat template (not --raw)\n"); return 1; }
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

/* ---- growable buffers ------------------------------------------------------------------------ */
typedef struct gbuf { char *p; size_t n, cap; } gbuf;
static int gbuf_add(gbuf *g, const char *s, size_t n) {
    if (g->n + n + 1 > g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 256;
        char *q;
        while (cap < g->n + n + 1) cap *= 2;
        if (!(q = (char *)realloc(g->p, cap))) return 0;
        g->p = q;
        g->cap = cap;
    }
    if (n) memcpy(g->p + g->n, s, n);
    g->n += n;
    g->p[g->n] = 0;
    return 1;
}
static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *d = (char *)malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* ---- the conversation, kept the way the template renders it ----------------------------------
   Every turn renders the whole history with lfm2_chat_tokenize (the template's markers are
   special tokens, the user's and the tools' text never is; the model's own answers are kept as
   generated, marked trusted). When the tokens in the context are a prefix of the new rendering
   only the rest is decoded; otherwise (LFM2.5 drops the reasoning of earlier answers, say) the
   context starts over with the whole conversation. */
typedef struct session {
    const options *o;
    lfm2_model *m;
    lfm2_context *c;
    lfm2_sampler *s;
    lfm2_chat_template tpl;
    lfm2cj tools;             /* --tools */
    lfm2_chat_message *msgs;  /* the history (strings owned) */
    int32_t n_msgs, cap_msgs;
    lfm2_token *ids;          /* the rendering of the history */
    int32_t ids_cap;
    lfm2_token *ctx;          /* the tokens in the context */
    int32_t n_ctx, ctx_cap;
    char date[16];
} session;

static int add_msg(session *S, const char *role, const char *content, int trusted) {
    lfm2_chat_message *m;
    if (S->n_msgs == S->cap_msgs) {
        int32_t cap = S->cap_msgs ? S->cap_msgs * 2 : 16;
        lfm2_chat_message *q = (lfm2_chat_message *)realloc(S->msgs, sizeof *q * (size_t)cap);
        if (!q) return 0;
        S->msgs = q;
        S->cap_msgs = cap;
    }
    m = &S->msgs[S->n_msgs];
    memset(m, 0, sizeof *m);
    m->role = dup_str(role);
    m->content = dup_str(content);
    m->trusted = trusted;
    if (!m->role || !m->content) return 0;
    S->n_msgs++;
    return 1;
}
static void clear_history(session *S) {
    int32_t k;
    for (k = 0; k < S->n_msgs; k++) { free((void *)S->msgs[k].role); free((void *)S->msgs[k].content); }
    S->n_msgs = 0;
    if (S->o->system && S->o->system[0]) add_msg(S, "system", S->o->system, 0);
}
static int ctx_add(session *S, const lfm2_token *t, int32_t n) {
    if (S->n_ctx + n > S->ctx_cap) {
        int32_t cap = S->ctx_cap ? S->ctx_cap : 1024;
        lfm2_token *q;
        while (cap < S->n_ctx + n) cap *= 2;
        if (!(q = (lfm2_token *)realloc(S->ctx, sizeof *q * (size_t)cap))) return 0;
        S->ctx = q;
        S->ctx_cap = cap;
    }
    memcpy(S->ctx + S->n_ctx, t, sizeof *t * (size_t)n);
    S->n_ctx += n;
    return 1;
}

/* Renders the history into S->ids; returns the number of ids, or -1 (message printed). */
static int32_t render_history(session *S) {
    lfm2_chat chat;
    lfm2_error err;
    int32_t need = 0, n = 0;
    memset(&chat, 0, sizeof chat);
    memset(&err, 0, sizeof err);
    chat.template_kind = S->tpl;
    chat.messages = S->msgs;
    chat.n_messages = S->n_msgs;
    chat.tools = S->tools.chat.tools;
    chat.n_tools = S->tools.chat.n_tools;
    chat.add_generation_prompt = 1;
    chat.date = S->date;
    if (lfm2_chat_tokenize(S->m, &chat, NULL, 0, &need, &err) != LFM2_OK) { fprintf(stderr, "lfm2: %s\n", err.message); return -1; }
    if (need > S->ids_cap) {
        lfm2_token *q = (lfm2_token *)realloc(S->ids, sizeof *q * (size_t)need);
        if (!q) { fprintf(stderr, "lfm2: out of memory\n"); return -1; }
        S->ids = q;
        S->ids_cap = need;
    }
    if (lfm2_chat_tokenize(S->m, &chat, S->ids, S->ids_cap, &n, &err) != LFM2_OK) { fprintf(stderr, "lfm2: %s\n", err.message); return -1; }
    return n;
}

/* ---- generation with streaming output ------------------------------------------------------ */
typedef struct stream_state {
    session *S;
    double t_first;   /* when the first token arrived (prefill + first sample done) */
    int32_t n;
    lfm2_chat_splitter split;
    gbuf answer;      /* everything generated (the history keeps it as it is) */
    gbuf call;        /* the text of the tool call being generated */
    int32_t n_calls;  /* tool calls printed in this answer */
    int failed;
} stream_state;

/* A finished tool call: printed as one JSON line per call. */
static void print_calls(stream_state *st) {
    lfm2_tool_call calls[16];
    char *buf;
    int32_t nc = 0, k;
    size_t need = 0, off = 0;
    lfm2_error err;
    memset(&err, 0, sizeof err);
    if (lfm2_tool_calls_parse(st->call.p ? st->call.p : "", st->call.n, NULL, 0, &nc, NULL, 0, &need, &off, &err) != LFM2_OK || nc > 16) {
        fprintf(stderr, "[lfm2: the model wrote a tool call that does not parse: %s]\n", nc > 16 ? "more than 16 calls" : err.message);
        st->call.n = 0;
        return;
    }
    buf = (char *)malloc(need + 1);
    if (buf && lfm2_tool_calls_parse(st->call.p, st->call.n, calls, 16, &nc, buf, need, &need, &off, &err) == LFM2_OK) {
        for (k = 0; k < nc; k++) {
            char line[64];
            snprintf(line, sizeof line, "%s{\"tool_call\": {\"name\": \"", st->answer.n && st->n_calls == 0 && k == 0 ? "\n" : "");
            out_write(line, strlen(line));
            out_write(calls[k].name, calls[k].name_len);
            out_write("\", \"arguments\": ", 16);
            out_write(calls[k].arguments, calls[k].arguments_len);
            out_write("}}\n", 3);
            st->n_calls++;
        }
    }
    free(buf);
    st->call.n = 0;
}

static void on_piece(void *user, int channel, const char *text, size_t len) {
    stream_state *st = (stream_state *)user;
    const options *o = st->S->o;
    if (channel == LFM2_CHAT_TOOL_CALL && o->tools_path) { if (!gbuf_add(&st->call, text, len)) st->failed = 1; return; }
    if (channel == LFM2_CHAT_MARKER && o->tools_path && len >= 17 && text[1] == '|') { /* the tool-call markers */
        if (len == 17) print_calls(st); /* <|tool_call_end|> */
        return;
    }
    if (o->hide_reasoning && (channel == LFM2_CHAT_REASONING || (channel == LFM2_CHAT_MARKER && len <= 8))) return;
    if (!out_write(text, len)) st->failed = 1;
}

static int on_token(void *user, lfm2_token t, const char *text, size_t len) {
    stream_state *st = (stream_state *)user;
    if (st->n == 0) st->t_first = now_s();
    if (t >= 0) {
        st->n++;
        if (!ctx_add(st->S, &t, 1)) st->failed = 1;
    }
    if (!gbuf_add(&st->answer, text, len)) st->failed = 1;
    lfm2_chat_splitter_push(&st->split, text, len, on_piece, st);
    return st->failed; /* a lost write stops the answer */
}
static int should_abort(void *user) {
    (void)user;
    return g_interrupted != 0;
}

/* Prefills ids[0..n_ids) (the new part of the prompt) and streams the answer. Returns 0 on
   success or a soft stop (Ctrl-C, full context: reported), 1 on a hard error; *n_calls = the
   tool calls the answer made. */
static int run_turn(session *S, const lfm2_token *ids, int32_t n_ids, int32_t *n_calls) {
    lfm2_generate_params gp;
    lfm2_generate_result res;
    lfm2_error err;
    stream_state st;
    lfm2_result rc;
    double t0;
    memset(&gp, 0, sizeof gp);
    memset(&err, 0, sizeof err);
    memset(&st, 0, sizeof st);
    st.S = S;
    lfm2_chat_splitter_init(&st.split, 0);
    *n_calls = 0;
    gp.max_tokens = S->o->n_predict;
    gp.on_token = on_token;
    gp.should_abort = should_abort;
    gp.user = &st;
    gp.error = &err;
    if (!S->o->raw && !ctx_add(S, ids, n_ids)) { fprintf(stderr, "lfm2: out of memory\n"); return 1; }
    t0 = now_s();
    rc = lfm2_generate(S->c, S->s, ids, n_ids, &gp, &res);
    if (!S->o->raw) lfm2_chat_splitter_flush(&st.split, on_piece, &st);
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
    *n_calls = st.n_calls;
    free(st.call.p);
    if (!S->o->raw) {
        if (rc == LFM2_OK && !add_msg(S, "assistant", st.answer.p ? st.answer.p : "", 1)) { free(st.answer.p); fprintf(stderr, "lfm2: out of memory\n"); return 1; }
        if (rc != LFM2_OK) { S->n_ctx = 0; lfm2_context_reset(S->c); lfm2_sampler_reset(S->s); } /* an interrupted answer is not kept */
    }
    free(st.answer.p);
    if (g_out_errno) return 1; /* reported by main */
    if (rc == LFM2_ERR_ABORTED) { fprintf(stderr, "[stopped]\n"); return 0; }
    if (rc == LFM2_ERR_CONTEXT_FULL) {
        fprintf(stderr, "lfm2: %s%s\n", err.message, S->o->interactive ? " (/reset to start over)" : "");
        return res.n_prompt == 0 && !S->o->interactive; /* a prompt that never fitted is an error */
    }
    if (rc != LFM2_OK) { fprintf(stderr, "lfm2: %s\n", err.message[0] ? err.message : lfm2_result_string(rc)); return 1; }
    return 0;
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

/* One exchange: the user's text (NULL: none, tool results were added), then the answer and, while
   it calls tools and stdin gives their results (one line each), the answers after them. */
static int exchange(session *S, const char *user, int tty, char **line, size_t *cap) {
    int32_t n_calls = 0, n, k, start;
    if (user && !add_msg(S, "user", user, 0)) { fprintf(stderr, "lfm2: out of memory\n"); return 1; }
    for (;;) {
        if ((n = render_history(S)) < 0) return 1;
        /* reuse the context when it holds a prefix of the new rendering */
        start = 0;
        if (S->n_ctx > 0 && S->n_ctx < n && lfm2_context_pos(S->c) == S->n_ctx && memcmp(S->ids, S->ctx, sizeof *S->ids * (size_t)S->n_ctx) == 0) start = S->n_ctx;
        else {
            if (S->n_ctx > 0 && S->o->verbose) fprintf(stderr, "[the history renders differently from the context: prefilling all %d tokens]\n", (int)n);
            lfm2_context_reset(S->c);
            lfm2_sampler_reset(S->s);
            S->n_ctx = 0;
        }
        if (n - start > lfm2_context_n_ctx(S->c) - lfm2_context_pos(S->c)) {
            fprintf(stderr, "lfm2: the conversation has %d tokens, more than the context of %d (-c)\n", (int)n, (int)lfm2_context_n_ctx(S->c));
            return S->o->interactive ? 0 : 1;
        }
        if (run_turn(S, S->ids + start, n - start, &n_calls)) return 1;
        if (n_calls == 0 || g_interrupted) return 0;
        for (k = 0; k < n_calls; k++) { /* the results, one line each */
            if (tty) fprintf(stderr, "tool result %d/%d> ", (int)(k + 1), (int)n_calls);
            if (!read_line(line, cap)) return 0;
            if (!add_msg(S, "tool", *line, 0)) { fprintf(stderr, "lfm2: out of memory\n"); return 1; }
        }
    }
}

static int interactive(session *S) {
    char *line = NULL;
    size_t cap = 0;
    int tty = 0, rc = 0;
#ifdef LFM2_CLI_POSIX
    tty = isatty(fileno(stdin));
#endif
    if (tty) fprintf(stderr, "chat: type a message, /reset to start over, /quit or Ctrl-D to leave, Ctrl-C stops an answer\n");
    for (;;) {
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
            S->n_ctx = 0;
            clear_history(S);
            fprintf(stderr, "[conversation reset]\n");
            continue;
        }
        {
            char *u = dup_str(line);
            int r = u ? exchange(S, u, tty, &line, &cap) : 1;
            free(u);
            if (r) { rc = 1; break; }
        }
    }
    free(line);
    return rc;
}

/* Tokenizes text[0..len) (--raw) into S->ids. */
static int tokenize_raw(session *S, const char *text, size_t len, int flags, int32_t *n) {
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

/* Reads a small file (--tools, generation_config.json); NULL if absent or unreadable. */
static char *read_file_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    char *b = NULL;
    long sz;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 && (b = (char *)malloc((size_t)sz + 1)) != NULL) {
        if (fread(b, 1, (size_t)sz, f) != (size_t)sz) { free(b); b = NULL; }
        else { b[sz] = 0; *n = (size_t)sz; }
    }
    fclose(f);
    return b;
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
    if (!o.raw) { /* the chat template: the folder's, or --template */
        if (o.template_name) S.tpl = lfm2_chat_template_from_name(o.template_name);
        else if ((rc = lfm2_chat_template_load_dir(o.model_dir, &S.tpl, &err)) != LFM2_OK) {
            if (rc != LFM2_ERR_IO) { fprintf(stderr, "lfm2: %s\n", err.message); return 1; }
            S.tpl = LFM2_CHAT_TEMPLATE_LFM2; /* a folder without any template: the LFM2 one */
            if (o.verbose) fprintf(stderr, "[%s: no chat template in the folder, using lfm2]\n", o.model_dir);
        }
        if (o.tools_path) {
            size_t n = 0;
            char *txt = read_file_all(o.tools_path, &n), msg[400];
            if (!txt) { fprintf(stderr, "lfm2: cannot read --tools file '%s'\n", o.tools_path); return 1; }
            if (!lfm2cj_parse_tools(&S.tools, txt, n, msg, sizeof msg)) { fprintf(stderr, "lfm2: %s: %s\n", o.tools_path, msg); free(txt); return 1; }
            /* (txt stays alive with the parsed tools) */
        }
        {
            time_t now = time(NULL);
            struct tm *tm = localtime(&now);
            if (tm) strftime(S.date, sizeof S.date, "%Y-%m-%d", tm);
            else snprintf(S.date, sizeof S.date, "1970-01-01");
        }
    }
    { /* sampling: generation_config.json's recipe where it has one, then the command line */
        char path[4096];
        size_t n = 0;
        char *gc;
        int found = 0;
        lfm2_sampler_params given = o.sp, rec;
        snprintf(path, sizeof path, "%s/generation_config.json", o.model_dir);
        gc = read_file_all(path, &n);
        if (gc && lfm2_sampler_params_from_generation_config(gc, n, &rec, &found, &err) == LFM2_OK && found) {
            rec.seed = o.sp.seed;
            o.sp = rec;
            if (o.sp_given & 1) o.sp.temperature = given.temperature;
            if (o.sp_given & 2) o.sp.top_k = given.top_k;
            if (o.sp_given & 4) o.sp.top_p = given.top_p;
            if (o.sp_given & 8) o.sp.min_p = given.min_p;
            if (o.sp_given & 16) o.sp.repetition_penalty = given.repetition_penalty;
            if (o.verbose) fprintf(stderr, "[sampling recipe of %s]\n", path);
        }
        free(gc);
    }
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
        if (!o.raw) fprintf(stderr, "[chat template %s%s]\n", lfm2_chat_template_name(S.tpl), o.tools_path ? ", with tools" : "");
    }
    install_sigint();
    if (!o.raw) clear_history(&S);

    if (o.interactive) {
        status = interactive(&S);
    } else if (o.raw) {
        size_t len = strlen(o.prompt);
        int32_t n = 0, nc = 0;
        int ok = tokenize_raw(&S, o.prompt, len, o.bos ? LFM2_TOKENIZE_ADD_BOS : 0, &n);
        if (ok && n == 0) { fprintf(stderr, "lfm2: the prompt is empty\n"); ok = 0; }
        if (ok && n > lfm2_context_n_ctx(S.c)) {
            fprintf(stderr, "lfm2: the prompt has %d tokens, more than the context of %d (-c)\n", (int)n, (int)lfm2_context_n_ctx(S.c));
            ok = 0;
        }
        if (ok) ok = out_write(o.prompt, len); /* completion: show the text it continues */
        status = ok ? run_turn(&S, S.ids, n, &nc) : 1;
        if (g_interrupted && !g_out_errno) status = 130; /* Ctrl-C in one-shot mode: the shell's convention */
    } else {
        char *line = NULL;
        size_t cap = 0;
        status = exchange(&S, o.prompt, 0, &line, &cap);
        free(line);
        if (g_interrupted && !g_out_errno) status = 130;
    }
    if (out_failed()) status = 1;

    {
        int32_t k;
        for (k = 0; k < S.n_msgs; k++) { free((void *)S.msgs[k].role); free((void *)S.msgs[k].content); }
        free(S.msgs);
        if (S.tools.j.src) free((void *)S.tools.j.src);
        lfm2cj_free(&S.tools);
    }
    free(S.ids);
    free(S.ctx);
    lfm2_sampler_free(S.s);
    lfm2_context_free(S.c);
    lfm2_model_free(S.m);
    return status;
}
