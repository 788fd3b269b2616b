/* data.stage_dir for a run (io/stage.h): every rank plans its copies, the
 * ranks of each node add up what they will write to the node's stage
 * directory and the node's first rank checks its free space, then each rank
 * copies. Collective over MPI_COMM_WORLD. */
#ifndef MIMAE_RUN_DATA_STAGE_H
#define MIMAE_RUN_DATA_STAGE_H

#include <stddef.h>

/* Stages index's shards of this rank (s % ranks == rank) under stage_dir
 * and puts the staged index's path in staged. The same status on every
 * rank: 0; 2 bad input (not sharded, a stage directory that cannot hold the
 * node's shards: nothing copied); 1 the disk filled during the copy. The
 * message is in err on the ranks that found it (empty on the others). */
int data_stage(const char *index, const char *stage_dir, int rank, int ranks, char *staged,
               size_t staged_len, char *err, size_t errlen);

#endif
