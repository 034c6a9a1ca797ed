/* tool_loop - a complete tool loop with lfm2.h: the model may call a local calculator or clock,
   gets the result, and answers.

       tool_loop MODEL_DIR "What is 17.5 * 4, and what time is it?"

   The conversation is rendered with the folder's chat template (lfm2_chat_template_load_dir)
   and fed with lfm2_chat_tokenize (markers special, user and tool text never); the answer is
   split as it streams (lfm2_chat_splitter_*): content is printed, reasoning goes to stderr,
   tool calls are parsed (lfm2_tool_calls_parse), run here, and their results are added as
   "tool" messages for the next round (at most 4 rounds).
   Build: make build/tool_loop  (or: cc -O2 -o tool_loop examples/tool_loop.c -lm -lpthread) */
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const tools[2] = {
    "{\"type\": \"function\", \"function\": {\"name\": \"calculate\", \"description\": \"Evaluate a + b, a - b, a * b or a / b\", "
    "\"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"number\"}, \"op\": {\"type\": \"string\", "
    "\"enum\": [\"+\", \"-\", \"*\", \"/\"]}, \"b\": {\"type\": \"number\"}}, \"required\": [\"a\", \"op\", \"b\"]}}}",
    "{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"description\": \"The current local date and time\", "
    "\"parameters\": {\"type\": \"object\", \"properties\": {}}}}" };

/* ---- the tools: arguments arrive as a JSON object printed like {"a": 17.5, "op": "*", "b": 4} */
static int json_number(const char *args, const char *key, double *v) {
    char pat[32];
    const char *p;
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    if (!(p = strstr(args, pat))) return 0;
    *v = strtod(p + strlen(pat), NULL);
    return 1;
}
static void run_tool(const lfm2_tool_call *c, char *out, size_t cap) {
    if (strcmp(c->name, "calculate") == 0) {
        double a, b;
        const char *op = strstr(c->arguments, "\"op\": \"");
        char o = op ? op[7] : 0;
        if (!json_number(c->arguments, "a", &a) || !json_number(c->arguments, "b", &b) || !o) snprintf(out, cap, "{\"error\": \"need a, op, b\"}");
        else if (o == '/' && b == 0) snprintf(out, cap, "{\"error\": \"division by zero\"}");
        else snprintf(out, cap, "{\"result\": %.17g}", o == '+' ? a + b : o == '-' ? a - b : o == '*' ? a * b : a / b);
    } else if (strcmp(c->name, "get_time") == 0) {
        time_t now = time(NULL);
        char t[64];
        strftime(t, sizeof t, "%Y-%m-%d %H:%M:%S", localtime(&now));
        snprintf(out, cap, "{\"time\": \"%s\"}", t);
    } else snprintf(out, cap, "{\"error\": \"no tool named %s\"}", c->name);
}

/* ---- streaming: the splitter's channels --------------------------------------------------- */
typedef struct answer {
    lfm2_chat_splitter split;
    char text[8192]; size_t n;   /* everything generated, kept in the history as it is */
    char call[4096]; size_t nc;  /* the tool-call text */
    int has_call;
} answer;

static void on_piece(void *user, int channel, const char *text, size_t len) {
    answer *a = (answer *)user;
    if (channel == LFM2_CHAT_CONTENT) fwrite(text, 1, len, stdout);
    else if (channel == LFM2_CHAT_REASONING) fwrite(text, 1, len, stderr);
    else if (channel == LFM2_CHAT_TOOL_CALL && a->nc + len < sizeof a->call) { memcpy(a->call + a->nc, text, len); a->nc += len; }
    else if (channel == LFM2_CHAT_MARKER && len == 17) a->has_call = 1; /* <|tool_call_end|> */
    fflush(stdout);
}
static int on_token(void *user, lfm2_token t, const char *text, size_t len) {
    answer *a = (answer *)user;
    (void)t;
    if (a->n + len < sizeof a->text) { memcpy(a->text + a->n, text, len); a->n += len; }
    lfm2_chat_splitter_push(&a->split, text, len, on_piece, a);
    return 0;
}

int main(int argc, char **argv) {
    lfm2_model *m = NULL;
    lfm2_context *c = NULL;
    lfm2_sampler *s = NULL;
    lfm2_model_params mp;
    lfm2_error err;
    lfm2_chat chat;
    lfm2_chat_message msgs[16];
    char *owned[16], date[16];
    int n_owned = 0, round, rc = 1;
    lfm2_chat_template tpl = LFM2_CHAT_TEMPLATE_UNKNOWN;
    time_t now = time(NULL);
    lfm2_sampler_params sp = lfm2_sampler_default_params();
    if (argc != 3) { fprintf(stderr, "usage: tool_loop MODEL_DIR QUESTION\n"); return 2; }
    memset(&mp, 0, sizeof mp);
    memset(&err, 0, sizeof err);
    memset(&chat, 0, sizeof chat);
    memset(msgs, 0, sizeof msgs);
    mp.error = &err;
    if (lfm2_chat_template_load_dir(argv[1], &tpl, &err) != LFM2_OK) {
        fprintf(stderr, "tool_loop: %s (using lfm2.5)\n", err.message);
        tpl = LFM2_CHAT_TEMPLATE_LFM25;
    }
    chat.template_kind = tpl;
    if (lfm2_model_load_dir(argv[1], &mp, &m) != LFM2_OK) { fprintf(stderr, "tool_loop: %s\n", err.message); return 1; }
    if (lfm2_context_create(m, NULL, &c) != LFM2_OK) goto done;
    sp.temperature = 0; /* greedy: a tool loop wants the likeliest call */
    if (lfm2_sampler_create(&sp, lfm2_model_config(m)->vocab_size, NULL, &s) != LFM2_OK) goto done;
    strftime(date, sizeof date, "%Y-%m-%d", localtime(&now));
    chat.messages = msgs;
    chat.tools = tools;
    chat.n_tools = 2;
    chat.add_generation_prompt = 1;
    chat.date = date;
    msgs[0].role = "user";
    msgs[0].content = argv[2];
    chat.n_messages = 1;
    for (round = 0; round < 4; round++) {
        static lfm2_token ids[16384];
        static answer a;
        static char buf[4096];
        lfm2_tool_call calls[8];
        lfm2_generate_params gp;
        int32_t n = 0, nc = 0, k;
        size_t need = 0;
        if (lfm2_chat_tokenize(m, &chat, ids, 16384, &n, &err) != LFM2_OK) { fprintf(stderr, "tool_loop: %s\n", err.message); goto done; }
        lfm2_context_reset(c); /* the whole conversation each round (simple; lfm2 -i reuses the cache) */
        lfm2_sampler_reset(s);
        memset(&a, 0, sizeof a);
        lfm2_chat_splitter_init(&a.split, 0);
        memset(&gp, 0, sizeof gp);
        gp.max_tokens = 512;
        gp.on_token = on_token;
        gp.user = &a;
        gp.error = &err;
        if (lfm2_generate(c, s, ids, n, &gp, NULL) != LFM2_OK) { fprintf(stderr, "tool_loop: %s\n", err.message); goto done; }
        lfm2_chat_splitter_flush(&a.split, on_piece, &a);
        printf("\n");
        if (chat.n_messages + 10 > 16) break;
        owned[n_owned] = (char *)malloc(a.n + 1); /* the answer, as generated (markers and all) */
        memcpy(owned[n_owned], a.text, a.n);
        owned[n_owned][a.n] = 0;
        msgs[chat.n_messages].role = "assistant";
        msgs[chat.n_messages].content = owned[n_owned++];
        msgs[chat.n_messages].trusted = 1; /* the model's own text: its markers stay special */
        chat.n_messages++;
        if (!a.has_call) { rc = 0; break; } /* answered */
        if (lfm2_tool_calls_parse(a.call, a.nc, calls, 8, &nc, buf, sizeof buf, &need, NULL, &err) != LFM2_OK) {
            fprintf(stderr, "tool_loop: the model's tool call does not parse: %s\n", err.message);
            rc = 0;
            break;
        }
        for (k = 0; k < nc && chat.n_messages < 16; k++) {
            char result[256];
            run_tool(&calls[k], result, sizeof result);
            fprintf(stderr, "[tool %s(%s) -> %s]\n", calls[k].name, calls[k].arguments, result);
            owned[n_owned] = (char *)malloc(strlen(result) + 1);
            strcpy(owned[n_owned], result);
            msgs[chat.n_messages].role = "tool";
            msgs[chat.n_messages].content = owned[n_owned++];
            chat.n_messages++;
        }
        rc = 0;
    }
done:
    while (n_owned) free(owned[--n_owned]);
    lfm2_sampler_free(s);
    lfm2_context_free(c);
    lfm2_model_free(m);
    return rc;
}
