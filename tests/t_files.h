/* tests/t_files.h - file fixtures made with C calls only (no POSIX shell: the Windows build runs
   the suite under Wine), UTF-8 paths through the wide API on Windows. Included by run_tests.c. */
#ifndef LFM2_T_FILES_H
#define LFM2_T_FILES_H
#include <errno.h>
#if defined(_WIN32)
#include <direct.h>
#include <io.h>
#include <wchar.h>
#else
#include <sys/types.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
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
static void t_prmdir(const char *path) { wchar_t wp[1024]; if (t_pw(path, wp, 1024)) _wrmdir(wp); }
static void t_premove(const char *path) { wchar_t wp[1024]; if (t_pw(path, wp, 1024)) _wremove(wp); }
#else
static FILE *t_pfopen(const char *path, const char *mode) { return fopen(path, mode); }
static int t_pmkdir(const char *path) { return mkdir(path, 0755) == 0 || errno == EEXIST; }
static void t_prmdir(const char *path) { rmdir(path); }
static void t_premove(const char *path) { remove(path); }
#endif
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
/* a fresh folder dir holding the named files of tests/data/SRC (names: NULL-terminated) */
static int t_pfolder(const char *dir, const char *src, const char *const *names) {
    char a[1024], b[1024];
    int ok = t_pmkdir("build") && t_pmkdir(dir);
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
