/* The exit statuses of mimae_dist, one meaning each (a requeue wrapper acts
 * on 3). */
#ifndef MIMAE_RUN_EXIT_STATUS_H
#define MIMAE_RUN_EXIT_STATUS_H

enum {
    EXIT_OK = 0,
    EXIT_FAILURE_INTERNAL = 1, /* anything else */
    EXIT_BAD_INPUT = 2,        /* one line says what and how to fix it */
    EXIT_REQUEUE = 3,          /* stopped by a signal after writing a checkpoint */
    EXIT_NONFINITE = 4,        /* a non-finite loss or state; last good checkpoint kept */
};

#endif
