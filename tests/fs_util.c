#include "fs_util.h"

#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void make_tmpdir(char *dir, size_t len, const char *prefix)
{
    const char *base = getenv("TMPDIR");
    int n = snprintf(dir, len, "%s/%s-XXXXXX", base && *base ? base : "/tmp", prefix);
    if (n < 0 || (size_t)n >= len)
        fail_msg("temporary directory name too long: %s (set TMPDIR to a shorter directory)", dir);
    if (!mkdtemp(dir)) fail_msg("mkdtemp %s: %s", dir, strerror(errno));
}

int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d && (errno == ENOENT || errno == ENOTDIR)) return 0;
    if (!d) fail_msg("cannot list %s: %s", dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

int remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlink(path);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        remove_tree(sub);
    }
    if (d) closedir(d);
    chmod(path, 0700);
    return rmdir(path);
}

void file_size_limit_set(file_size_limit_t *l, long long bytes)
{
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &l->old), 0);
    struct rlimit lim = l->old;
    lim.rlim_cur = (rlim_t)bytes;
    l->old_handler = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

void file_size_limit_restore(const file_size_limit_t *l)
{
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &l->old), 0);
    signal(SIGXFSZ, l->old_handler);
}

int has_temporary(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp-")) found = 1;
    closedir(d);
    return found;
}
