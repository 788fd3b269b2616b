#include "io/io_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *io_path_join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/%s", dir, name);
    return p;
}
