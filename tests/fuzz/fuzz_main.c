/* A libFuzzer target: FUZZ_TARGET names the entry point of fuzz_entry.h
 * ("descriptor", "dataset", "checkpoint" or "results"); run.sh builds one
 * binary per name. */
#include <stddef.h>
#include <stdint.h>

#include "tests/fuzz/fuzz_entry.h"

#ifndef FUZZ_TARGET
#error "build with -DFUZZ_TARGET='\"descriptor\"' (or dataset, checkpoint, results)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_run_named(FUZZ_TARGET, data, size);
    return 0;
}
