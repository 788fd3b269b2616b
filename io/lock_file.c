/* Run-directory locks seen from inside and outside (io/lock_file.h). */
#include "io/lock_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_error.h"

#define HOLDER_MAX 512

void lock_file_holder(int fd, char *out, size_t len)
{
    char text[HOLDER_MAX] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n > 0) {
        text[n] = 0;
        text[strcspn(text, "\n")] = 0;
    }
    if (n > 0 && text[0]) {
        snprintf(out, len, "%s", text);
        return;
    }
    struct flock probe = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK)
        snprintf(out, len, "pid %ld (just started)", (long)probe.l_pid);
    else
        snprintf(out, len, "another process (just started)");
}

int lock_file_probe(const char *path, char *holder, size_t len, char *err, size_t errlen)
{
    /* O_NONBLOCK: a FIFO planted at the name must not stall the caller */
    const int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ELOOP) return 0;
        return io_fail(err, errlen, "%s: cannot open the run directory's lock file (%s)", path,
                       strerror(errno));
    }
    struct stat st;
    struct flock probe = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int held = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if (fcntl(fd, F_GETLK, &probe) == 0) held = probe.l_type != F_UNLCK;
        else if (errno != ENOLCK && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL)
            held = io_fail(err, errlen, "%s: cannot test the run directory's lock (%s)", path,
                           strerror(errno));
    }
    if (held == 1) lock_file_holder(fd, holder, len);
    close(fd);
    return held;
}
