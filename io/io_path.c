#include "io/io_path.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *io_path_join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* mkdir of one component; an existing one must be a directory. */
static int make_one_dir(const char *path)
{
    if (mkdir(path, 0777) == 0) return 0;
    if (errno != EEXIST) return -1;
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (S_ISDIR(st.st_mode)) return 0;
    errno = ENOTDIR;
    return -1;
}

int io_make_dirs(const char *dir, char *failed, size_t failed_len)
{
    char path[PATH_MAX];
    if (!dir[0]) {
        snprintf(failed, failed_len, "%s", dir);
        errno = ENOENT;
        return -1;
    }
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) {
        snprintf(failed, failed_len, "%s", dir);
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p) continue;
        const char end = *p;
        *p = '\0';
        if (make_one_dir(path) != 0) {
            const int e = errno;
            snprintf(failed, failed_len, "%s", path);
            errno = e;
            return -1;
        }
        if (!end) return 0;
        *p = '/';
    }
}
