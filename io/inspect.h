/* `mimae inspect FILE`: what a data set, checkpoint or results file holds,
 * told by its format attribute; any other HDF5 file is listed generically. */
#ifndef MIMAE_IO_INSPECT_H
#define MIMAE_IO_INSPECT_H

#include <stddef.h>
#include <stdio.h>

int inspect_file(const char *path, FILE *out, char *err, size_t errlen);

#endif
