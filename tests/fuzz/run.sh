#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + coverage) into
# build/fuzz/, writes the HDF5 seed corpus, and runs every target for a
# bounded time (FUZZ_TIME seconds each, default 120; `make fuzz-long`: 300).
# Exits non-zero when a target crashes or breaks an invariant; the input is then in
# build/fuzz/crashes/ (replay: build/fuzz/fuzz_<target> FILE; keep it as a
# regression in tests/fuzz/regressions/<target>/ once fixed).
#
#   tests/fuzz/run.sh [TARGET...]      (make fuzz runs them all)
#
# Environment: FUZZ_TIME (seconds per target), FUZZ_RSS_MB (default 2048),
# CLANG (default clang), FUZZ_KEEP_CORPUS=1 keeps what earlier runs found.
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(descriptor dataset checkpoint results)
TIME=${FUZZ_TIME:-120}
RSS=${FUZZ_RSS_MB:-2048}
CLANG=${CLANG:-clang}
OUT=build/fuzz
PKGS="openblas mpi-c hdf5-openmpi scalapack-openmpi cmocka inih libpng zlib libjpeg"

command -v "$CLANG" >/dev/null || { echo "fuzz: $CLANG not found (apt-get install clang libclang-rt-14-dev)"; exit 1; }
for lib in build/libmimae_io.a build/libmimae_core.a build/libmimae_experiments.a build/mimae; do
    [ -e "$lib" ] || { echo "fuzz: $lib missing: run make first (make fuzz does)"; exit 1; }
done

PKG_CFLAGS=$(pkg-config --cflags $PKGS)
# oneDNN (core/kernels/bf16_matmul.c, linked with every core object here)
# has no pkg-config file: -ldnnl, and -lgomp for its OpenMP runtime.
PKG_LIBS="$(pkg-config --libs $PKGS) -ldnnl -lgomp"
WARN="-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes"
BASE="-std=c11 -D_POSIX_C_SOURCE=200809L -O1 -g -fno-omit-frame-pointer -I. $PKG_CFLAGS"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

rm -rf "$OUT/obj" "$OUT/crashes" "$OUT/hdf5-bugs"
mkdir -p "$OUT/obj" "$OUT/crashes"

# The loaders and what they use: io/ and the descriptor code with coverage
# (libFuzzer steers by it); core/ with the sanitizers only.
echo "fuzz: building the targets with $CLANG into $OUT/"
build_obj() { # SRC EXTRA_FLAGS
    local src=$1 obj="$OUT/obj/$(echo "${1%.c}" | tr / _).o"
    # shellcheck disable=SC2086
    "$CLANG" $BASE $WARN $SAN $2 -c "$src" -o "$obj"
}
export -f build_obj
export CLANG BASE WARN SAN OUT
ls io/*.c experiments/descriptor.c experiments/sweep.c tests/fuzz/fuzz_entry.c tests/fs_util.c |
    xargs -P "$(nproc)" -I{} bash -c 'build_obj {} -fsanitize=fuzzer-no-link'
ls core/*/*.c | xargs -P "$(nproc)" -I{} bash -c 'build_obj {} ""'

for t in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086
    "$CLANG" $BASE $WARN $SAN -fsanitize=fuzzer -DFUZZ_TARGET="\"$t\"" tests/fuzz/fuzz_main.c \
        "$OUT"/obj/*.o -o "$OUT/fuzz_$t" $PKG_LIBS -lm -lpthread
done

# Seeds: the committed text ones, and small HDF5 files written by the
# project's own writers (built against the plain build/ libraries).
# shellcheck disable=SC2086
gcc $BASE -o "$OUT/make_seeds" tests/fuzz/make_seeds.c build/libmimae_io.a build/libmimae_core.a \
    $PKG_LIBS -lm -lpthread
# shellcheck disable=SC2086
gcc $BASE -o "$OUT/make_regressions" tests/fuzz/make_regressions.c build/libmimae_io.a \
    build/libmimae_core.a $PKG_LIBS -lm -lpthread
SEEDS="$OUT/seeds"
rm -rf "$SEEDS"
mkdir -p "$SEEDS"/{descriptor,dataset,checkpoint,results}
"$OUT/make_seeds" "$SEEDS/dataset" "$SEEDS/checkpoint" "$SEEDS/results"
find "$SEEDS/dataset" -name '*.h5' | while read -r f; do mv "$f" "$SEEDS/dataset/$(echo "${f#$SEEDS/dataset/}" | tr / _)"; done
find "$SEEDS/dataset" -mindepth 1 -type d -exec rm -rf {} +
rm -f "$SEEDS"/results/*.png
cp tests/fuzz/seeds/descriptor/* "$SEEDS/descriptor/"

# The descriptor dictionary: every section and key of `mimae keys`.
DICT="$OUT/descriptor.dict"
{
    build/mimae keys | sed -n 's/^| `\([a-z_]*\)\.\([a-z_]*\)`.*/\1 \2/p' | sort -u |
        while read -r sec key; do echo "\"[$sec]\""; echo "\"$key = \""; done | sort -u
    for w in fmnist-tiny vit-b16 test-small deterministic fast auto mean cls masks batch \
              seeds nan inf 1e999 0x10 true off " ;" " #" "\\x0a" "\\x00"; do echo "\"$w\""; done
} > "$DICT"

# Where a crash, hang or memory bomb happened: the first stack frame of the
# replay that is not the sanitizers', libFuzzer's or libc's, as "MODULE
# FUNCTION". Crashes and hangs inside libhdf5 on a corrupt file are HDF5
# 1.10.8's own bugs (out-of-bounds heap object reads, endless global heap
# parsing): recorded in $OUT/hdf5-bugs/ and reported, not fatal. Everything
# else is ours and fails the run.
crash_site() { # TARGET FILE SECONDS
    local frames first named
    frames=$({ TMPDIR="$PWD/$OUT/tmp" ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
      LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      timeout 120 "$OUT/fuzz_$1" -timeout="$3" -rss_limit_mb="$RSS" "$2" 2>&1 || true; } |
        grep -E '^ *#[0-9]+ 0x' |
        grep -vE ' in (__interceptor_|__asan|__sanitizer|__ubsan|__lsan|__libc|_start|main$|main |malloc|calloc|realloc|free|mem(cpy|move|set|cmp)|str[a-z]*|fuzzer::|operator|std::)' |
        grep -vE '\((/lib/x86_64-linux-gnu/)?(libc|libpthread|libstdc|ld-linux|linux-vdso)[^)]*\)' |
        sed -E 's/^ *#[0-9]+ 0x[0-9a-f]+ in ([^ ]+) \(([^)+]*).*/\2 \1/;
                s/^ *#[0-9]+ 0x[0-9a-f]+ in ([^ ]+) ([^ ]+).*/\2 \1/;
                s/^ *#[0-9]+ 0x[0-9a-f]+ +\(([^)+]*).*/\1 ?/' || true)
    first=$(echo "$frames" | head -n 1)
    # an unnamed frame (HDF5's static functions): name it by the first named
    # frame of the same library below it (H5HG_read, H5C_protect, ...)
    if [ "${first##* }" = "?" ]; then
        named=$(echo "$frames" | grep -F "${first% *} " | grep -v ' ?$' | head -n 1 || true)
        [ -z "$named" ] || first="${first% *} ${named##* }"
    fi
    echo "$first"
}

status=0
mkdir -p "$OUT/hdf5-bugs"
for t in "${TARGETS[@]}"; do
    corpus="$OUT/corpus/$t"
    [ "${FUZZ_KEEP_CORPUS:-0}" = 1 ] || rm -rf "$corpus"
    mkdir -p "$corpus"
    dict=()
    limit=5 # seconds per input: a file of a few kB parses in milliseconds
    [ "$t" = descriptor ] && dict=(-dict="$DICT") && limit=20 # sweeps of 10^5 tasks

    echo "fuzz: $t for ${TIME} s"
    log="$OUT/$t.log"
    set +e
    # fork mode goes on after a crash, a hang or a memory bomb; each leaves
    # an artifact, classified below
    # (the targets' temporary files go to $OUT/tmp: a crashed input leaves its own)
    rm -rf "$OUT/tmp" && mkdir -p "$OUT/tmp"
    TMPDIR="$PWD/$OUT/tmp" \
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp:print_suppressions=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$OUT/fuzz_$t" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
        -max_total_time="$TIME" -rss_limit_mb="$RSS" -timeout="$limit" -print_final_stats=1 \
        -artifact_prefix="$OUT/crashes/$t-" "${dict[@]}" \
        "$corpus" "$SEEDS/$t" "tests/fuzz/regressions/$t" >"$log" 2>&1
    rc=$?
    set -e
    # fork mode's progress lines: "#N: cov: C ft: F corp: K exec/s E ..."
    last=$(grep -E '^#[0-9]+: cov: ' "$log" | tail -n 1 || true)
    execs=$(echo "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    rate=$(echo "$last" | sed -n 's/.* exec\/s \([0-9]*\).*/\1/p')
    ours=0 theirs=0
    for f in "$OUT"/crashes/"$t"-*; do
        [ -e "$f" ] || continue
        site=$(crash_site "$t" "$f" "$limit")
        kind=$(basename "$f" | sed "s/^$t-\([a-z-]*\)-.*/\1/") # crash, timeout, oom, leak
        case "$site" in
            *libhdf5*)
                theirs=$((theirs + 1))
                mv "$f" "$OUT/hdf5-bugs/$(basename "$f")"
                echo "fuzz: $t: HDF5 library $kind (in ${site##* }) on a corrupt file: $OUT/hdf5-bugs/$(basename "$f")" ;;
            *)
                ours=$((ours + 1))
                echo "fuzz: $t: $kind in ${site:-? (not reproduced)}: $f"
                "$OUT/fuzz_$t" "$f" 2>&1 | grep -E 'ERROR|runtime error|invariant broken|SUMMARY|^ *#[0-9] ' | head -n 12 || true ;;
        esac
    done
    rm -rf "$OUT/tmp"
    echo "fuzz: $t: ${execs:-?} inputs (${rate:-?}/s at the end), coverage ${cov:-?} edges, corpus $(ls "$corpus" | wc -l) files, $ours failure(s) in mimae, $theirs in libhdf5, exit $rc"
    if [ "$ours" -gt 0 ] || { [ "$rc" -ne 0 ] && [ "$theirs" -eq 0 ]; } || [ -z "$execs" ]; then
        status=1
        [ "$ours" -gt 0 ] || tail -n 30 "$log"
        echo "fuzz: $t FAILED: see $log and $OUT/crashes/"
    fi
done
[ "$status" -eq 0 ] && echo "fuzz: no crashes in mimae's code" || echo "fuzz: crashes found"
exit "$status"
