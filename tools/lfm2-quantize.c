/* lfm2-quantize - write a pre-quantized LFM2 model folder that lfm2.h loads memory-mapped with
   no conversion.

     lfm2-quantize [--force] [--row-major] IN_DIR OUT_DIR q8|q4

   OUT_DIR gets config.json (with a "quantization_config" entry added), the tokenizer and
   generation files copied as they are, and one model.safetensors in which every weight matrix
   NAME (embed_tokens, lm_head, in_proj/out_proj, q/k/v/out_proj, w1/w2/w3) with rows % 16 == 0
   and cols % 64 == 0 is stored in the interleaved layout of lfm2.h's fast kernels:
     NAME        U8 [rows/16, cols/64, 1088]  (q8)   or   U8 [rows/16, cols/64, 576]  (q4)
   one record of 16 rows x 64 columns each (their 32 f16 scales, then the quants; lfm2.h
   >>formats, lfm2__x16_rec), with "lfm2.h.interleave" in the __metadata__ naming the layout
   (LFM2__X16_LAYOUT, which the loader checks). lfm2.h maps these in place at the levels with
   the interleaved kernels (AVX512_VNNI and up, aarch64 NEON) and unpacks them at load elsewhere.
   The other matrices (and, with --row-major, all of them: the layout of earlier versions, which
   lfm2.h still reads, repacking it at load) are stored row-major:
     NAME        I8 [rows, cols]     (q8)   or   U8 [rows, cols/2]   (q4: two 4-bit values a byte)
     NAME_scale  F16 [rows, cols/32] one scale per block of 32 columns
   Every other tensor (norms, conv taps, biases, and any tensor lfm2.h does not use, whatever its
   name or rank) is copied unchanged. With q4 the embedding and the head are stored as q8 (see
   lfm2.h >>quant). Either way the values are those of quantizing IN_DIR at load time (the
   layout is a permutation of the same bytes, independent of the CPU). Tensor data is 64-byte
   aligned.

   Safety (a model folder is often in use while it is replaced):
   - OUT_DIR may not be IN_DIR, lie inside it or contain it (compared as resolved paths and as
     device/inode of every parent, so symlinks and other aliases are seen through).
   - An OUT_DIR that already holds model files (config.json, *.safetensors, the index, the
     tokenizer and generation files) is refused unless --force. Other files in it are kept.
   - Nothing is written in place. The new folder is built in a hidden sibling of OUT_DIR
     (.NAME.lfm2-quantize-XXXXXX), every file fsync'ed, then loaded again and checked: the digest
     of every matrix's values must equal that of quantizing IN_DIR at load time, every other
     tensor must hold the input's bytes, the config the input's. Only then is it put in place:
     renamed to OUT_DIR when that did not exist, else exchanged with it in one atomic step
     (Linux renameat2 RENAME_EXCHANGE; elsewhere file by file: the old index first, so that a
     crash in between never loads old shards beside new files), and the old model files are
     deleted. A process that has the old files mapped keeps them (they are unlinked, never
     truncated). Any failure (full disk, a file size limit: SIGXFSZ is ignored, Ctrl-C) removes
     the sibling and leaves OUT_DIR as it was; the exit status is then 1. (Only SIGKILL or a
     crash of the machine can leave a sibling behind; OUT_DIR is then still the old folder.)
   Windows (MinGW-w64): the same steps with the Win32 calls: _fullpath for the paths (compared
   without case), the volume serial number and file index for the device/inode checks, _commit
   for fsync (folders are not synced), and, for an OUT_DIR that exists, the exchange is two
   renames (MoveFileEx: Windows cannot rename a folder over another one): OUT_DIR to a hidden
   sibling .NAME.lfm2-quantize-XXXXXX-old, then the new folder to OUT_DIR; if the second fails
   the first is undone, and if the first fails (a file in OUT_DIR is open: in use by a process
   that loaded it) nothing was changed. Either way the run fails with OUT_DIR as it was and the
   new folder removed. (A crash between the two renames leaves the old folder whole in the -old
   sibling.) Paths are in the ANSI code page (the C runtime's narrow calls).
   Build: make build/lfm2-quantize  (or: cc -O2 -march=native -fopenmp -o lfm2-quantize
   tools/lfm2-quantize.c -lm; -march=native selects the SIMD kernels at compile time). */
#if !defined(_GNU_SOURCE) && defined(__linux__)
#define _GNU_SOURCE 1 /* renameat2 / syscall */
#endif
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
/* the file format is row-major: keep load-time quantization out of the interleaved layout that
   VNNI builds use in memory */
#define LFM2__ROW_MAJOR_QUANT 1
#define LFM2_IMPLEMENTATION
#include "../lfm2.h"
#include "lfm2_digest.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <limits.h>
#include <fcntl.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/types.h>
#include <sys/stat.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif
#ifdef _WIN32
#include <windows.h>
#include <io.h>
#include <direct.h>
#define lstat stat /* no symbolic links through the C runtime */
#define fsync _commit
#endif
#ifndef O_BINARY
#define O_BINARY 0
#endif

/* ---- Windows replacements of realpath and mkdtemp ---------------------------------------------- */

#ifdef _WIN32
/* the absolute path of an existing file or folder, '/' as separator (malloc'ed; NULL + errno) */
static char *qt_realpath(const char *path, char *unused) {
    char in[PATH_MAX], *r, *q;
    size_t n = strlen(path);
    (void)unused;
    if (n + 2 > sizeof in) { errno = ENAMETOOLONG; return NULL; }
    memcpy(in, path, n + 1);
    if (n == 2 && in[1] == ':') { in[2] = '/'; in[3] = 0; } /* "C:" is the current folder of C: */
    if (GetFileAttributesA(in) == INVALID_FILE_ATTRIBUTES) { errno = ENOENT; return NULL; }
    if (!(r = _fullpath(NULL, in, 0))) { errno = ENOENT; return NULL; }
    for (q = r; *q; q++) if (*q == '\\') *q = '/';
    n = strlen(r);
    while (n > 3 && r[n - 1] == '/') r[--n] = 0;
    return r;
}
#define realpath qt_realpath
static char *qt_mkdtemp(char *tmpl) {
    size_t n = strlen(tmpl), k;
    unsigned v = (unsigned)GetCurrentProcessId() * 2654435761u ^ (unsigned)GetTickCount();
    int tries;
    static const char digits[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    if (n < 6 || strcmp(tmpl + n - 6, "XXXXXX")) { errno = EINVAL; return NULL; }
    for (tries = 0; tries < 1000; tries++) {
        unsigned x = v = v * 1103515245u + 12345u + (unsigned)tries;
        for (k = n - 6; k < n; k++) { tmpl[k] = digits[(x >> 8) % 36]; x = x * 69069u + 1u; }
        if (_mkdir(tmpl) == 0) return tmpl;
        if (errno != EEXIST) return NULL;
    }
    return NULL;
}
#define mkdtemp qt_mkdtemp
#endif

/* ---- errors and the temporary folder --------------------------------------------------------- */

/* The sibling folder being built and the files made in it, for the cleanup (also from a signal
   handler: only unlink and rmdir there). */
#define QT_MAX_FILES 16
static char g_tmp[PATH_MAX];
static char g_files[QT_MAX_FILES][PATH_MAX];
static volatile sig_atomic_t g_n_files = 0, g_have_tmp = 0;

static void cleanup_tmp(void) {
    int i;
    if (!g_have_tmp) return;
    for (i = 0; i < g_n_files; i++) unlink(g_files[i]);
    rmdir(g_tmp);
    g_have_tmp = 0;
}
static void on_signal(int sig) {
    cleanup_tmp();
    _exit(128 + sig);
}
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("lfm2-quantize: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cleanup_tmp();
    return 1;
}

/* ---- paths ---------------------------------------------------------------------------------- */

/* dst = a + sep + b (dst holds PATH_MAX bytes); 0 when it does not fit */
static int join3(char *dst, const char *a, const char *sep, const char *b) {
    size_t la = strlen(a), ls = strlen(sep), lb = strlen(b);
    if (la + ls + lb + 1 > PATH_MAX) { dst[0] = 0; return 0; }
    memmove(dst, a, la);
    memcpy(dst + la, sep, ls);
    memcpy(dst + la + ls, b, lb + 1);
    return 1;
}

/* what identifies a file or folder: device and inode (Windows: volume serial number and file
   index; st_ino is 0 there) */
typedef struct qt_fid { unsigned long long dev, ino; } qt_fid;
static int qt_fileid(const char *path, qt_fid *id) {
#ifdef _WIN32
    BY_HANDLE_FILE_INFORMATION fi;
    HANDLE h = CreateFileA(path, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                           FILE_FLAG_BACKUP_SEMANTICS /* folders too */, NULL);
    int ok;
    if (h == INVALID_HANDLE_VALUE) return -1;
    ok = GetFileInformationByHandle(h, &fi) != 0;
    CloseHandle(h);
    if (!ok) return -1;
    id->dev = fi.dwVolumeSerialNumber;
    id->ino = ((unsigned long long)fi.nFileIndexHigh << 32) | fi.nFileIndexLow;
    return 0;
#else
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    id->dev = (unsigned long long)st.st_dev;
    id->ino = (unsigned long long)st.st_ino;
    return 0;
#endif
}
static int same_file(const qt_fid *a, const qt_fid *b) { return a->dev == b->dev && a->ino == b->ino; }

/* 1 if the folder `id` is `path` or one of its parents (path: absolute, resolved) */
static int is_ancestor(const qt_fid *id, const char *path) {
    char buf[PATH_MAX + 1];
    size_t n = strlen(path), k;
    qt_fid s;
    if (n >= PATH_MAX) return 0;
    memcpy(buf, path, n + 1);
    for (k = n; ; k--) {
        if (k == n || buf[k] == '/') {
            char keep = buf[k], keep1 = buf[k + 1];
            buf[k] = 0;
            if (k == 2 && buf[1] == ':') { buf[2] = '/'; buf[3] = 0; } /* a drive's root, "C:/" */
            if (qt_fileid(k == 0 ? "/" : buf, &s) == 0 && same_file(&s, id)) return 1;
            buf[k] = keep;
            buf[k + 1] = keep1;
        }
        if (k == 0) break;
    }
    return 0;
}
/* 1 if resolved path b is a or lies inside a (Windows: without case) */
static int path_within(const char *a, const char *b) {
    size_t n = strlen(a);
    if (n == 1 && a[0] == '/') return 1;
#ifdef _WIN32
    if (n == 3 && a[1] == ':' && a[2] == '/') return _strnicmp(a, b, 3) == 0;
    return _strnicmp(a, b, n) == 0 && (b[n] == 0 || b[n] == '/');
#else
    return strncmp(a, b, n) == 0 && (b[n] == 0 || b[n] == '/');
#endif
}
static int same_path(const char *a, const char *b) {
#ifdef _WIN32
    return _stricmp(a, b) == 0;
#else
    return strcmp(a, b) == 0;
#endif
}

/* Resolves OUT: out_abs = its absolute path with symlinks resolved (for a folder that does not
   exist yet: its resolved parent + its name); *exists, and *st when it exists. */
static int resolve_out(const char *out, char *out_abs, char *parent, char *base, int *exists, struct stat *st) {
    char tmp[PATH_MAX], *r, *slash;
    size_t n = strlen(out);
    struct stat ls;
    if (n == 0 || n >= sizeof tmp) return fail("bad output folder name '%s'", out);
    memcpy(tmp, out, n + 1);
#ifdef _WIN32
    for (r = tmp; *r; r++) if (*r == '\\') *r = '/';
    if (n == 2 && tmp[1] == ':') return fail("the output folder cannot be the root folder");
#endif
    while (n > 1 && tmp[n - 1] == '/') tmp[--n] = 0;
    if (lstat(tmp, &ls) == 0) {
        if (stat(tmp, st) != 0) return fail("output folder %s is a symbolic link to something missing", out);
        if (!S_ISDIR(st->st_mode)) return fail("%s exists and is not a folder", out);
        if (!(r = realpath(tmp, NULL))) return fail("cannot resolve %s: %s", out, strerror(errno));
        snprintf(out_abs, PATH_MAX, "%s", r);
        free(r);
        *exists = 1;
    } else if (errno == ENOENT) {
        slash = strrchr(tmp, '/');
        if (slash) {
            *slash = 0;
#ifdef _WIN32
            if (slash == tmp + 2 && tmp[1] == ':') { /* "C:/name": the parent is C:/, not C: */
                char drive[4] = {tmp[0], ':', '/', 0};
                r = realpath(drive, NULL);
            } else
#endif
            r = realpath(slash == tmp ? "/" : tmp, NULL);
            snprintf(base, PATH_MAX, "%s", slash + 1);
        } else {
            r = realpath(".", NULL);
            snprintf(base, PATH_MAX, "%s", tmp);
        }
        if (!r) return fail("the folder that would hold %s does not exist (%s)", out, strerror(errno));
        if (strlen(r) + strlen(base) + 2 > PATH_MAX) { free(r); return fail("path too long: %s", out); }
        join3(out_abs, r, strcmp(r, "/") ? "/" : "", base);
        free(r);
        *exists = 0;
    } else {
        return fail("cannot look at %s: %s", out, strerror(errno));
    }
    /* parent and name of the resolved path: the temporary sibling goes next to it */
    snprintf(parent, PATH_MAX, "%s", out_abs);
    slash = strrchr(parent, '/');
    if (!slash || slash[1] == 0) return fail("the output folder cannot be the root folder");
    snprintf(base, PATH_MAX, "%s", slash + 1);
    if (slash == parent) slash[1] = 0; else *slash = 0;
    return 0;
}

/* ---- model files ---------------------------------------------------------------------------- */

/* the files of a model folder that lfm2-quantize writes, replaces or removes */
static int is_model_file(const char *name) {
    static const char *const known[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "chat_template.jinja", "added_tokens.json"};
    size_t i, n = strlen(name);
    for (i = 0; i < sizeof known / sizeof known[0]; i++) if (!strcmp(name, known[i])) return 1;
    if (n > 12 && !strcmp(name + n - 12, ".safetensors")) return 1;
    if (n > 23 && !strcmp(name + n - 23, ".safetensors.index.json")) return 1;
    return 0;
}
/* a model file in dir (config.json or the weights if there), or "" */
static int find_model_file(const char *dir, char *first, size_t cap) {
    static const char *const main_files[] = {"config.json", "model.safetensors", "model.safetensors.index.json"};
    char path[PATH_MAX];
    struct stat st;
    DIR *d;
    struct dirent *e;
    size_t i;
    first[0] = 0;
    for (i = 0; i < sizeof main_files / sizeof main_files[0]; i++)
        if (join3(path, dir, "/", main_files[i]) && lstat(path, &st) == 0) { snprintf(first, cap, "%s", main_files[i]); return 0; }
    d = opendir(dir);
    if (!d) return fail("cannot list %s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL)
        if (is_model_file(e->d_name)) { snprintf(first, cap, "%s", e->d_name); break; }
    closedir(d);
    return 0;
}

/* ---- writing -------------------------------------------------------------------------------- */

typedef struct qt_file { int fd; const char *path; } qt_file;

static int qt_open(qt_file *f, const char *name) {
    if (g_n_files >= QT_MAX_FILES) return fail("too many files");
    if (!join3(g_files[g_n_files], g_tmp, "/", name)) return fail("path too long: %s/%s", g_tmp, name);
    f->path = g_files[g_n_files];
    f->fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL | O_BINARY, 0644);
    if (f->fd < 0) return fail("cannot create %s: %s", f->path, strerror(errno));
    g_n_files++;
    return 0;
}
static int qt_write(qt_file *f, const void *p, size_t n) {
    const char *b = (const char *)p;
    while (n > 0) {
        ssize_t w = write(f->fd, b, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return fail("cannot write %s: %s", f->path, w < 0 ? strerror(errno) : "no progress");
        b += w;
        n -= (size_t)w;
    }
    return 0;
}
static int qt_close(qt_file *f) {
    int e = 0;
    if (fsync(f->fd) != 0) e = errno;
    if (close(f->fd) != 0 && !e) e = errno;
    f->fd = -1;
    return e ? fail("cannot write %s: %s", f->path, strerror(e)) : 0;
}
static int fsync_dir(const char *dir) {
#ifdef _WIN32
    (void)dir; /* a folder cannot be opened through the C runtime; NTFS journals its entries */
    return 0;
#else
    int fd = open(dir, O_RDONLY), e = 0;
    if (fd < 0) return fail("cannot open %s: %s", dir, strerror(errno));
    if (fsync(fd) != 0 && errno != EINVAL) e = errno;
    close(fd);
    return e ? fail("cannot sync %s: %s", dir, strerror(e)) : 0;
#endif
}

/* reads dir/name; NULL with *missing = 1 when it does not exist */
static char *read_file(const char *dir, const char *name, size_t *n, int *missing) {
    char path[PATH_MAX];
    FILE *f;
    char *b;
    long sz;
    *missing = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!(f = fopen(path, "rb"))) { *missing = errno == ENOENT; return NULL; }
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 || !(b = (char *)malloc((size_t)sz + 1))) {
        fclose(f);
        return NULL;
    }
    if (fread(b, 1, (size_t)sz, f) != (size_t)sz) { fclose(f); free(b); return NULL; }
    fclose(f);
    b[sz] = 0;
    *n = (size_t)sz;
    return b;
}
static int write_whole(const char *name, const void *p, size_t n) {
    qt_file f;
    if (qt_open(&f, name) || qt_write(&f, p, n) || qt_close(&f)) return 1;
    return 0;
}

/* a growable text buffer for the safetensors header */
typedef struct qt_text { char *p; size_t n, cap; int oom; } qt_text;
static void tx_put(qt_text *t, const char *s, size_t n) {
    if (t->oom) return;
    if (t->n + n + 1 > t->cap) {
        size_t cap = (t->n + n + 1) * 2;
        char *q = (char *)realloc(t->p, cap);
        if (!q) { t->oom = 1; return; }
        t->p = q;
        t->cap = cap;
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
}
static void tx_puts(qt_text *t, const char *s) { tx_put(t, s, strlen(s)); }
static void tx_printf(qt_text *t, const char *fmt, ...) {
    char b[128];
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    tx_put(t, b, (size_t)(k < 0 ? 0 : k));
}
/* s as a JSON string: quote, backslash and control characters escaped, other bytes as they are */
static void tx_json_str(qt_text *t, const char *s) {
    tx_put(t, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { char e[2]; e[0] = '\\'; e[1] = (char)c; tx_put(t, e, 2); }
        else if (c < 0x20) tx_printf(t, "\\u%04x", c);
        else tx_put(t, (const char *)&c, 1);
    }
    tx_put(t, "\"", 1);
}

typedef struct qt_entry {
    char *name;               /* malloc'd */
    const char *dtype;
    int ndim;
    int64_t shape[LFM2__MAX_NDIM];
    const void *data;
    uint64_t bytes;
    const lfm2__tensor *copy; /* the input tensor copied unchanged, or NULL for a quantized one */
    const lfm2__mat *xmat;    /* a matrix stored as interleaved records (made by entry_data), or NULL */
} qt_entry;

/* the bytes of entry e: its data, or for interleaved records a malloc'd buffer (*tmp, to free)
   made from the row-major matrix one matrix at a time, so that the tool never holds a second
   copy of the model; NULL when out of memory */
static const void *entry_data(const qt_entry *e, void **tmp) {
    lfm2__ilv v;
    *tmp = NULL;
    if (!e->xmat) return e->data;
    if (!(*tmp = malloc((size_t)e->bytes ? (size_t)e->bytes : 1))) return NULL;
    memset(&v, 0, sizeof v);
    v.dst = (unsigned char *)*tmp;
    v.src = (const unsigned char *)e->xmat->data;
    v.sc = e->xmat->scales;
    v.cols = e->xmat->cols;
    v.dtype = e->xmat->dtype;
    lfm2__interleave_groups(&v, 0, (int64_t)(e->xmat->rows / 16), 0);
    return *tmp;
}

/* the quantized matrix stored under this tensor name, or NULL */
static const lfm2__mat *find_mat(const lfm2_model *m, const char *name) {
    char buf[160];
    int32_t l;
    if (!strcmp(name, "model.embed_tokens.weight")) return &m->embed;
    if (!strcmp(name, "lm_head.weight")) return &m->head;
    if (strncmp(name, "model.layers.", 13) != 0) return NULL;
    {   /* an expert of a sparse (MoE) layer: model.layers.L.feed_forward.experts.E.wK.weight */
        int ll = -1, e = -1, k = -1, end = 0;
        if (sscanf(name, "model.layers.%d.feed_forward.experts.%d.w%d.weight%n", &ll, &e, &k, &end) == 3 && name[end] == 0 && ll >= 0 &&
            ll < m->cfg.num_hidden_layers && m->layers[ll].is_moe && e >= 0 && e < m->cfg.num_experts && (k == 1 || k == 2 || k == 3)) {
            snprintf(buf, sizeof buf, "model.layers.%d.feed_forward.experts.%d.w%d.weight", ll, e, k);
            if (!strcmp(buf, name)) return &m->layers[ll].experts[3 * e + (k == 1 ? 0 : k == 3 ? 1 : 2)];
        }
    }
    for (l = 0; l < m->cfg.num_hidden_layers; l++) {
        const lfm2__layer *ly = &m->layers[l];
        static const char *const nm[9] = {"feed_forward.w1.weight", "feed_forward.w3.weight", "feed_forward.w2.weight",
                                          "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                          "self_attn.out_proj.weight", "conv.in_proj.weight", "conv.out_proj.weight"};
        const lfm2__mat *mats[9];
        int k;
        mats[0] = &ly->w1; mats[1] = &ly->w3; mats[2] = &ly->w2;
        mats[3] = &ly->wq; mats[4] = &ly->wk; mats[5] = &ly->wv; mats[6] = &ly->wo;
        mats[7] = &ly->in_proj; mats[8] = &ly->out_proj;
        for (k = 0; k < 9; k++) {
            snprintf(buf, sizeof buf, "model.layers.%d.%s", l, nm[k]);
            if (!strcmp(name, buf)) return mats[k];
        }
    }
    return NULL;
}

/* the table of output tensors (sorted by name as the input's); *n_out entries */
static qt_entry *plan_tensors(const lfm2_model *m, int row_major, int32_t *n_out) {
    int32_t i, n = 0, nt = m->n_tensors;
    qt_entry *ents = (qt_entry *)calloc((size_t)nt * 2 + 1, sizeof *ents);
    if (!ents) return NULL;
    for (i = 0; i < nt; i++) {
        const lfm2__tensor *t = m->by_name[i];
        const lfm2__mat *w = find_mat(m, t->name);
        qt_entry *e = &ents[n++];
        size_t ln = strlen(t->name);
        if (!(e->name = (char *)malloc(ln + 7))) { *n_out = n; return ents; }
        memcpy(e->name, t->name, ln + 1);
        if (w && (w->dtype == LFM2__DT_Q8 || w->dtype == LFM2__DT_Q4) && !row_major && w->rows % 16 == 0 && w->cols % 64 == 0) {
            /* the interleaved records (lfm2.h LFM2__X16_LAYOUT): the same bytes as the row-major
               quants and scales, in the order the interleaved kernels read them */
            int q4 = w->dtype == LFM2__DT_Q4;
            size_t rec = LFM2__X16_REC(q4), ng = (size_t)(w->rows / 16), np = (size_t)(w->cols / 64);
            e->dtype = "U8";
            e->ndim = 3;
            e->shape[0] = (int64_t)ng;
            e->shape[1] = (int64_t)np;
            e->shape[2] = (int64_t)rec;
            e->bytes = (uint64_t)(ng * np * rec);
            e->xmat = w;
        } else if (w && (w->dtype == LFM2__DT_Q8 || w->dtype == LFM2__DT_Q4)) {
            uint64_t cells = (uint64_t)w->rows * (uint64_t)w->cols;
            e->dtype = w->dtype == LFM2__DT_Q8 ? "I8" : "U8";
            e->ndim = 2;
            e->shape[0] = w->rows;
            e->shape[1] = w->dtype == LFM2__DT_Q8 ? w->cols : w->cols / 2;
            e->data = w->data;
            e->bytes = w->dtype == LFM2__DT_Q8 ? cells : cells / 2;
            e = &ents[n++];
            if (!(e->name = (char *)malloc(ln + 7))) { *n_out = n; return ents; }
            memcpy(e->name, t->name, ln);
            memcpy(e->name + ln, "_scale", 7);
            e->dtype = "F16";
            e->ndim = 2;
            e->shape[0] = w->rows;
            e->shape[1] = w->cols / 32;
            e->data = w->scales;
            e->bytes = cells / 32 * 2;
        } else {
            e->dtype = lfm2__dtype_name[t->dtype];
            e->ndim = t->ndim;
            memcpy(e->shape, t->shape, sizeof e->shape);
            e->data = t->data;
            e->bytes = t->nbytes;
            e->copy = t;
        }
    }
    *n_out = n;
    return ents;
}

static int write_safetensors(const qt_entry *ents, int32_t n, int bits, int row_major, uint64_t *data_bytes) {
    static const char pad[64] = {0};
    qt_text h;
    qt_file f;
    uint64_t off = 0, hlen;
    unsigned char le[8];
    int32_t i, d;
    memset(&h, 0, sizeof h);
    tx_printf(&h, "{\"__metadata__\":{\"format\":\"lfm2.h-q%d\"", bits);
    if (!row_major) { tx_puts(&h, ",\"lfm2.h.interleave\":"); tx_json_str(&h, LFM2__X16_LAYOUT); }
    tx_puts(&h, "}");
    for (i = 0; i < n; i++) {
        off = (off + 63) & ~(uint64_t)63;
        tx_puts(&h, ",");
        tx_json_str(&h, ents[i].name);
        tx_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", ents[i].dtype);
        for (d = 0; d < ents[i].ndim; d++) tx_printf(&h, d ? ",%lld" : "%lld", (long long)ents[i].shape[d]);
        tx_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + ents[i].bytes));
        off += ents[i].bytes;
    }
    tx_puts(&h, "}");
    while (!h.oom && (8 + h.n) % 64 != 0) tx_puts(&h, " "); /* the data region starts 64-byte aligned */
    if (h.oom) { free(h.p); return fail("out of memory for the safetensors header"); }
    hlen = h.n;
    for (d = 0; d < 8; d++) le[d] = (unsigned char)(hlen >> (8 * d));
    if (qt_open(&f, "model.safetensors") || qt_write(&f, le, 8) || qt_write(&f, h.p, h.n)) { free(h.p); return 1; }
    free(h.p);
    off = 0;
    for (i = 0; i < n; i++) {
        uint64_t aligned = (off + 63) & ~(uint64_t)63;
        void *tmp;
        const void *src = entry_data(&ents[i], &tmp);
        if (!src) return fail("out of memory for the records of \"%s\"", ents[i].name);
        if (qt_write(&f, pad, (size_t)(aligned - off)) || qt_write(&f, src, (size_t)ents[i].bytes)) { free(tmp); return 1; }
        free(tmp);
        off = aligned + ents[i].bytes;
    }
    *data_bytes = off;
    return qt_close(&f);
}

/* config.json with "quantization_config" added as the first key */
static int write_config(const char *in_dir, int bits) {
    size_t n = 0;
    int missing;
    char *txt = read_file(in_dir, "config.json", &n, &missing), *brace, q[128];
    qt_file f;
    int k;
    if (!txt) return fail("cannot read %s/config.json", in_dir);
    brace = strchr(txt, '{');
    if (!brace) { free(txt); return fail("%s/config.json is not a JSON object", in_dir); }
    k = snprintf(q, sizeof q, "\n  \"quantization_config\": {\"quant_method\": \"lfm2.h\", \"bits\": %d, \"group_size\": 32},", bits);
    if (qt_open(&f, "config.json") || qt_write(&f, txt, (size_t)(brace - txt) + 1) || qt_write(&f, q, (size_t)k) ||
        qt_write(&f, brace + 1, n - (size_t)(brace + 1 - txt)) || qt_close(&f)) {
        free(txt);
        return 1;
    }
    free(txt);
    return 0;
}

/* ---- the check of what was written ---------------------------------------------------------- */

static int verify(lfm2_model *in, const char *dir, const qt_entry *ents, int32_t n, uint64_t *digest) {
    lfm2_model *out = NULL;
    lfm2_model_params p;
    lfm2_error err;
    lfm2_digests *a = (lfm2_digests *)malloc(sizeof *a), *b = (lfm2_digests *)malloc(sizeof *b);
    int32_t i, k, bad = 0;
    memset(&p, 0, sizeof p);
    p.error = &err;
    if (!a || !b) { free(a); free(b); return fail("out of memory"); }
    if (lfm2_model_load_dir(dir, &p, &out) != LFM2_OK) { free(a); free(b); return fail("the folder written does not load: %s", err.message); }
    if (!lfm2_digest_model(in, a) || !lfm2_digest_model(out, b)) { bad = fail("too many matrices to check"); goto done; }
    if (memcmp(&in->cfg, &out->cfg, sizeof in->cfg) != 0) { bad = fail("the config read back differs from the input's"); goto done; }
    if (out->n_tensors != n) { bad = fail("the file read back holds %d tensors, %d were written", (int)out->n_tensors, (int)n); goto done; }
    if (a->n_mats != b->n_mats) { bad = fail("%d matrices read back, %d expected", (int)b->n_mats, (int)a->n_mats); goto done; }
    for (k = 0; k < a->n_mats; k++)
        if (a->mat[k] != b->mat[k]) { bad = fail("matrix %d [%d, %d] read back differs (digest %016llx, expected %016llx)", (int)k, (int)a->rows[k], (int)a->cols[k],
                                                 (unsigned long long)b->mat[k], (unsigned long long)a->mat[k]); goto done; }
    if (a->vectors != b->vectors) { bad = fail("the norm / conv / bias values read back differ"); goto done; }
    for (i = 0; i < n; i++) {
        const lfm2__tensor *t = lfm2__model_find(out, ents[i].name);
        int d, same;
        if (!t) { bad = fail("tensor \"%s\" is missing from the file read back", ents[i].name); goto done; }
        same = !strcmp(lfm2__dtype_name[t->dtype], ents[i].dtype) && t->ndim == ents[i].ndim && t->nbytes == ents[i].bytes;
        for (d = 0; same && d < t->ndim; d++) same = t->shape[d] == ents[i].shape[d];
        if (same) {
            void *tmp;
            const void *src = entry_data(&ents[i], &tmp);
            if (!src) { bad = fail("out of memory"); goto done; }
            same = memcmp(t->data, src, (size_t)t->nbytes) == 0;
            free(tmp);
        }
        if (!same) { bad = fail("tensor \"%s\" read back differs from what was written", ents[i].name); goto done; }
    }
    *digest = b->all;
done:
    lfm2_model_free(out);
    free(a);
    free(b);
    return bad;
}

/* ---- putting the new folder in place -------------------------------------------------------- */

/* exchanges folders a and b. Windows: b is renamed aside to a + "-old" and a to b (undone if the
   second rename fails); then a is set to a + "-old", where b's previous contents are. */
static int exchange(char *a, const char *b) {
#if defined(_WIN32)
    char old[PATH_MAX];
    if (!join3(old, a, "-old", "")) { errno = ENAMETOOLONG; return -1; }
    if (!MoveFileExA(b, old, 0)) { errno = GetLastError() == ERROR_ALREADY_EXISTS ? EEXIST : EACCES; return -1; }
    if (!MoveFileExA(a, b, 0)) {
        if (!MoveFileExA(old, b, 0))
            fprintf(stderr, "lfm2-quantize: cannot move %s back to %s (error %lu): the previous folder is there\n", old, b, (unsigned long)GetLastError());
        errno = EACCES;
        return -1;
    }
    memcpy(a, old, strlen(old) + 1);
    return 0;
#elif defined(__linux__) && defined(SYS_renameat2)
    if (getenv("LFM2_QUANTIZE_NO_EXCHANGE")) { errno = EINVAL; return -1; } /* tests: the fallback */
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
#else
    (void)a; (void)b;
    errno = ENOSYS;
    return -1;
#endif
}

/* After the exchange: old holds the previous contents of out. Its model files are deleted, the
   rest moved back into out. */
static int clear_old(const char *old, const char *out) {
    DIR *d = opendir(old);
    struct dirent *e;
    char a[PATH_MAX], b[PATH_MAX];
    int kept = 0;
    if (!d) return fail("cannot list %s: %s", old, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!join3(a, old, "/", e->d_name) || !join3(b, out, "/", e->d_name)) { kept++; continue; }
        if (is_model_file(e->d_name)) { if (unlink(a) != 0) kept++; }
        else if (rename(a, b) != 0) kept++;
    }
    closedir(d);
    if (rmdir(old) != 0 || kept)
        fprintf(stderr, "lfm2-quantize: warning: %d entries of the previous %s could not be moved back or deleted: they are in %s\n", kept, out, old);
    return 0;
}

/* Without an exchange: file by file. The old index goes first (the loader prefers it), then the
   new files replace the old ones one rename at a time, then the other old model files go. */
static int commit_by_file(const char *out, const char **names, int n_names) {
    DIR *d;
    struct dirent *e;
    char a[PATH_MAX], b[PATH_MAX];
    int i, pass;
    for (pass = 0; pass < 2; pass++) {
        if (!(d = opendir(out))) return fail("cannot list %s: %s", out, strerror(errno));
        while ((e = readdir(d)) != NULL) {
            size_t ln = strlen(e->d_name);
            int is_index = ln > 23 && !strcmp(e->d_name + ln - 23, ".safetensors.index.json"), ours = 0;
            for (i = 0; i < n_names; i++) if (!strcmp(e->d_name, names[i])) ours = 1;
            if (!is_model_file(e->d_name) || ours || (pass == 0 && !is_index)) continue;
            if (!join3(a, out, "/", e->d_name) || unlink(a) != 0) { closedir(d); return fail("cannot delete %s: %s", a, strerror(errno)); }
        }
        closedir(d);
        if (pass == 0) {
            for (i = 0; i < n_names; i++) {
                if (!join3(a, g_tmp, "/", names[i]) || !join3(b, out, "/", names[i]) || rename(a, b) != 0) return fail("cannot move %s to %s: %s (%s is now partly replaced)", a, b, strerror(errno), out);
            }
        }
    }
    g_n_files = 0;
    if (rmdir(g_tmp) != 0) fprintf(stderr, "lfm2-quantize: warning: cannot remove %s\n", g_tmp);
    g_have_tmp = 0;
    return 0;
}

int main(int argc, char **argv) {
    static const char *const extra[] = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                        "special_tokens_map.json", "chat_template.jinja"};
    const char *in = NULL, *out = NULL, *type = NULL, *written[QT_MAX_FILES];
    char in_abs[PATH_MAX], out_abs[PATH_MAX], parent[PATH_MAX], base[PATH_MAX], first[256];
    struct stat in_st, out_st;
    qt_fid in_id, out_id;
#ifndef _WIN32
    struct sigaction sa;
#endif
    lfm2_model *m = NULL;
    lfm2_model_params p;
    lfm2_error err;
    qt_entry *ents;
    int32_t i, n = 0;
    int bits, force = 0, row_major = 0, exists = 0, n_written = 0, rc;
    uint64_t data_bytes = 0, digest = 0;
    mode_t um;
    char *r;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force")) force = 1;
        else if (!strcmp(argv[i], "--row-major")) row_major = 1;
        else if (!in) in = argv[i];
        else if (!out) out = argv[i];
        else if (!type) type = argv[i];
        else type = "";
    }
    if (!in || !out || !type || (strcmp(type, "q8") && strcmp(type, "q4"))) {
        fprintf(stderr, "usage: lfm2-quantize [--force] [--row-major] IN_DIR OUT_DIR q8|q4\n");
        return 2;
    }
    bits = type[1] == '8' ? 8 : 4;
#ifdef SIGXFSZ
    signal(SIGXFSZ, SIG_IGN); /* a file size limit makes write() fail with EFBIG instead */
#endif

    /* the two folders: never the same, never one inside the other */
    if (stat(in, &in_st) != 0 || !S_ISDIR(in_st.st_mode)) { fprintf(stderr, "lfm2-quantize: %s is not a folder\n", in); return 1; }
    if (!(r = realpath(in, NULL))) { fprintf(stderr, "lfm2-quantize: cannot resolve %s: %s\n", in, strerror(errno)); return 1; }
    snprintf(in_abs, sizeof in_abs, "%s", r);
    free(r);
    if (qt_fileid(in_abs, &in_id) != 0) { fprintf(stderr, "lfm2-quantize: cannot look at %s: %s\n", in, strerror(errno)); return 1; }
    if (resolve_out(out, out_abs, parent, base, &exists, &out_st)) return 1;
    if (exists && qt_fileid(out_abs, &out_id) != 0) return fail("cannot look at %s: %s", out, strerror(errno));
    if ((exists && same_file(&in_id, &out_id)) || same_path(in_abs, out_abs))
        return fail("the output folder %s is the input folder %s: refusing to overwrite the model being read", out, in);
    if (path_within(in_abs, out_abs) || is_ancestor(&in_id, exists ? out_abs : parent))
        return fail("the output folder %s lies inside the input folder %s", out, in);
    if (exists && (path_within(out_abs, in_abs) || is_ancestor(&out_id, in_abs)))
        return fail("the input folder %s lies inside the output folder %s", in, out);
    if (exists) {
        if (find_model_file(out_abs, first, sizeof first)) return 1;
        if (first[0] && !force) return fail("%s already holds a model (%s): give --force to replace it", out, first);
    }

    memset(&p, 0, sizeof p);
    p.error = &err;
    p.no_tokenizer = 1;
    p.weights = bits == 8 ? LFM2_WEIGHTS_Q8 : LFM2_WEIGHTS_Q4;
    if (lfm2_model_load_dir(in, &p, &m) != LFM2_OK) { fprintf(stderr, "lfm2-quantize: %s\n", err.message); return 1; }
    for (i = 0; i < m->n_tensors; i++)
        if (m->by_name[i]->dtype == LFM2__DT_I8 || m->by_name[i]->dtype == LFM2__DT_U8) {
            fail("%s is already quantized (tensor \"%s\" is %s): quantize the original model", in, m->by_name[i]->name,
                 lfm2__dtype_name[m->by_name[i]->dtype]);
            lfm2_model_free(m);
            return 1;
        }
    ents = plan_tensors(m, row_major, &n);
    for (i = 0; ents && i < n; i++) if (!ents[i].name) break;
    if (!ents || i < n) {
        for (i = 0; ents && i < n; i++) free(ents[i].name);
        free(ents);
        lfm2_model_free(m);
        return fail("out of memory");
    }

    /* build the new folder in a hidden sibling; signals remove it */
    if (strlen(parent) + strlen(base) + 32 > sizeof g_tmp) { lfm2_model_free(m); return fail("path too long: %s", out_abs); }
    join3(g_tmp, parent, strcmp(parent, "/") ? "/." : ".", base);
    strcat(g_tmp, ".lfm2-quantize-XXXXXX");
#ifdef _WIN32
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGBREAK, on_signal);
#else
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
#endif
    if (!mkdtemp(g_tmp)) { lfm2_model_free(m); return fail("cannot create a folder beside %s: %s", out_abs, strerror(errno)); }
    g_have_tmp = 1;
    rc = write_safetensors(ents, n, bits, row_major, &data_bytes);
    if (!rc) written[n_written++] = "model.safetensors";
    if (!rc) rc = write_config(in, bits);
    if (!rc) written[n_written++] = "config.json";
    for (i = 0; !rc && i < (int32_t)(sizeof extra / sizeof extra[0]); i++) {
        size_t len = 0;
        int missing = 0;
        char *txt = read_file(in, extra[i], &len, &missing);
        if (!txt && !missing) rc = fail("cannot read %s/%s", in, extra[i]);
        else if (txt) {
            rc = write_whole(extra[i], txt, len);
            if (!rc) written[n_written++] = extra[i];
        }
        free(txt);
    }
    if (!rc) rc = fsync_dir(g_tmp);
    if (!rc) rc = verify(m, g_tmp, ents, n, &digest);
    for (i = 0; i < n; i++) free(ents[i].name);
    free(ents);
    lfm2_model_free(m);
    if (rc) { cleanup_tmp(); return 1; }

    /* put it in place: from here on no signal interrupts the commit */
#ifdef _WIN32
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGBREAK, SIG_IGN);
#else
    {
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
    }
#endif
    um = umask(0);
    umask(um);
    if (!exists) {
        chmod(g_tmp, 0777 & ~um);
        if (rename(g_tmp, out_abs) != 0) return fail("cannot rename %s to %s: %s", g_tmp, out_abs, strerror(errno));
        g_have_tmp = 0;
        if (fsync_dir(parent)) return 1;
    } else {
        chmod(g_tmp, out_st.st_mode & 07777);
        if (exchange(g_tmp, out_abs) == 0) {
            g_have_tmp = 0; /* g_tmp now holds the previous contents */
            if (fsync_dir(parent) || clear_old(g_tmp, out_abs)) return 1;
        } else {
#ifdef _WIN32
            /* no file-by-file fallback: an open file would leave OUT_DIR partly replaced */
            (void)commit_by_file;
            (void)written;
            return fail("cannot replace %s (a file in it is in use?): it is unchanged", out);
#else
            if (commit_by_file(out_abs, written, n_written)) return 1;
#endif
        }
        if (fsync_dir(out_abs)) return 1;
    }
    fprintf(stderr, "wrote %s: %d tensors, q%d, %.1f MiB of tensor data; loaded it again: every tensor checked (digest %016llx)\n",
            out, (int)n, bits, (double)data_bytes / (1024.0 * 1024.0), (unsigned long long)digest);
    return 0;
}
