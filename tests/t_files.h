/* tests/t_files.h - file fixtures made with C calls only (no POSIX shell: the Windows build runs
   the suite under Wine), UTF-8 paths through the wide API on Windows. Included by run_tests.c.
   Every file or folder a test writes lives in the run's scratch folder (t_tmp_path below), so that
   several runs of the suite (the stages of make -j test) never share a path. */
#ifndef LFM2_T_FILES_H
#define LFM2_T_FILES_H
#include <errno.h>
#if defined(_WIN32)
#include <direct.h>
#include <io.h>
#include <process.h> /* _getpid */
#include <wchar.h>
#else
#include <sys/types.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
int symlink(const char *target, const char *linkpath); /* POSIX.1-2001 (not declared under -std=c99) */
#endif

#if defined(_WIN32)
static int t_pw(const char *s, wchar_t *w, int n) { return MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) > 0; }
static FILE *t_pfopen(const char *path, const char *mode) {
    wchar_t wp[1024], wm[8];
    if (!t_pw(path, wp, 1024) || !t_pw(mode, wm, 8)) return NULL;
    return _wfopen(wp, wm);
}
static int t_pmkdir(const char *path) { wchar_t wp[1024]; return t_pw(path, wp, 1024) && (_wmkdir(wp) == 0 || errno == EEXIST); }
static int t_pmkdir_new(const char *path) { wchar_t wp[1024]; return t_pw(path, wp, 1024) && _wmkdir(wp) == 0; }
static int t_prmdir(const char *path) { wchar_t wp[1024]; return t_pw(path, wp, 1024) && _wrmdir(wp) == 0; }
static void t_premove(const char *path) { wchar_t wp[1024]; if (t_pw(path, wp, 1024)) _wremove(wp); }
#else
static FILE *t_pfopen(const char *path, const char *mode) { return fopen(path, mode); }
static int t_pmkdir(const char *path) { return mkdir(path, 0755) == 0 || errno == EEXIST; }
static int t_pmkdir_new(const char *path) { return mkdir(path, 0755) == 0; }
static int t_prmdir(const char *path) { return rmdir(path) == 0; }
static void t_premove(const char *path) { remove(path); }
#endif
/* t_pmkdir: 1 if path is a folder afterwards; t_pmkdir_new: 1 only if this call made it;
   t_prmdir: 1 if the (empty) folder was removed */

/* ---- the scratch folder of the run -------------------------------------------------------------
   LFM2_TEST_TMP if set (made if missing; give a relative path: under WASI only the current
   directory and /tmp are preopened), else build/tmp-<pid> made for this run (build/tmp-<pid>-<k>
   when that exists already: a stale folder of a dead process, or under WASI, which has no process
   ids, another run started in the same second: the time stands in for the pid there). Made on
   first use; t_tmp_finish removes it at the end of the run if this run made it and the tests left
   it empty (a failed test's files stay for a look). */
static char t_tmp_root[512];
static int t_tmp_made = 0; /* 1: this run made t_tmp_root */
static unsigned long t_tmp_id(void) {
#if defined(_WIN32)
    return (unsigned long)_getpid();
#elif defined(__wasi__)
    return (unsigned long)time(NULL);
#else
    return (unsigned long)getpid();
#endif
}
static const char *t_tmp_dir(void) {
    const char *env = getenv("LFM2_TEST_TMP");
    int k;
    if (t_tmp_root[0]) return t_tmp_root;
    if (env && env[0]) {
        snprintf(t_tmp_root, sizeof t_tmp_root, "%s", env);
        t_tmp_made = t_pmkdir_new(t_tmp_root);
        if (!t_tmp_made && !t_pmkdir(t_tmp_root)) printf("    cannot make the scratch folder LFM2_TEST_TMP=%s\n", t_tmp_root);
        else printf("    scratch folder %s (LFM2_TEST_TMP)\n", t_tmp_root);
        return t_tmp_root;
    }
    t_pmkdir("build");
    for (k = 0; k < 1000; k++) {
        if (k == 0) snprintf(t_tmp_root, sizeof t_tmp_root, "build/tmp-%lu", t_tmp_id());
        else snprintf(t_tmp_root, sizeof t_tmp_root, "build/tmp-%lu-%d", t_tmp_id(), k);
        if (t_pmkdir_new(t_tmp_root)) { t_tmp_made = 1; break; }
        if (errno != EEXIST) break;
    }
    if (t_tmp_made) printf("    scratch folder %s\n", t_tmp_root);
    else printf("    cannot make a scratch folder %s (errno %d)\n", t_tmp_root, errno);
    return t_tmp_root;
}
/* buf = the scratch folder's path of name (a file or folder name, UTF-8); returns buf */
static const char *t_tmp_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", t_tmp_dir(), name);
    return buf;
}
/* end of the run: removes the scratch folder if this run made it and it is empty (best effort) */
static void t_tmp_finish(void) {
    if (t_tmp_made && !t_prmdir(t_tmp_root)) printf("note: the scratch folder %s is not empty: left in place\n", t_tmp_root);
    t_tmp_made = 0;
}

/* writes n bytes to path (UTF-8); 1 on success */
static int t_pwrite(const char *path, const void *buf, size_t n) {
    FILE *f = t_pfopen(path, "wb");
    int ok;
    if (!f) return 0;
    ok = fwrite(buf, 1, n, f) == n;
    return (fclose(f) == 0) && ok;
}
/* copies file from to file to; 1 on success */
static int t_pcopy(const char *from, const char *to) {
    size_t n;
    char *b = t_read_file(from, &n);
    int ok = b && t_pwrite(to, b, n);
    free(b);
    return ok;
}
/* a folder dir holding the named files of tests/data/SRC (names: NULL-terminated); dir's parent
   must exist (a t_tmp_path name: the scratch folder is made by t_tmp_dir) */
static int t_pfolder(const char *dir, const char *src, const char *const *names) {
    char a[1024], b[1024];
    int ok = t_pmkdir(dir);
    for (; ok && *names; names++) {
        snprintf(a, sizeof a, "%s/%s/%s", t_data_dir(), src, *names);
        snprintf(b, sizeof b, "%s/%s", dir, *names);
        ok = t_pcopy(a, b);
    }
    return ok;
}
/* removes dir/name for each name, then dir */
static void t_pclean(const char *dir, const char *const *names) {
    char b[1024];
    for (; *names; names++) {
        snprintf(b, sizeof b, "%s/%s", dir, *names);
        t_premove(b);
        t_prmdir(b);
    }
    t_prmdir(dir);
}

#endif
