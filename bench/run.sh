#!/usr/bin/env bash
# Runs every benchmark of bench/ (built by `make bench` into BUILD/bench/) and
# ends with one summary table. Ratios are measured in one run on one machine;
# absolute times depend on the machine and on what else runs on it.
#
#   bench/run.sh BUILD                 (make bench runs: bench/run.sh build)
#
# Environment: BENCH_STEPS (timed steps, default 2 for vs_pytorch, 3 for
# mfu), BENCH_QUICK=1 (fmnist only, MI-MAE only, no 2-thread comparison),
# BENCH_PYTHON (/usr/bin/python3), BENCH_VITB=0 (skip the ViT-B/16 rows, the
# longest part: about 9 minutes on 2 cores, of about 13 in all), BENCH_DATA=0 (skip the data path,
# about 2 minutes: 2000 JPEGs made, imported twice and read). OPENBLAS_CORETYPE
# is left as the caller has it (the tables name the OpenBLAS kernel in use).
set -u
build=${1:?usage: bench/run.sh BUILD_DIR}
bin=$build/bench
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.." || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
steps=${BENCH_STEPS:-2}
python=${BENCH_PYTHON:-/usr/bin/python3}
configs=cifar,fmnist masks=4,1 threads="1 2"
if [ "${BENCH_QUICK:-0}" = 1 ]; then configs=fmnist masks=4 threads=1; fi
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
for b in vs_pytorch mfu memory scaling vitb pair northstar data; do
    [ -x "$bin/$b" ] || { echo "bench/run.sh: $bin/$b missing (run make bench)"; exit 1; }
done
# bf16 rows when the CPU has bf16 instructions (as mimae_dist checks)
bf16=0
grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo && bf16=1
start=$(date +%s)
run() { # prints and keeps the output
    echo "\$ $*"
    "$@" 2>&1 | tee -a "$log"
    echo
}

echo "=== mimae benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "    OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<unset>}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo

echo "=== 1. model FLOP utilisation (1 thread)"
run env OPENBLAS_NUM_THREADS=1 "$bin/mfu" --steps "${BENCH_STEPS:-3}" --configs "$configs" --masks "$masks"

echo "=== 2. mimae vs PyTorch, same model and step"
if [ -x "$python" ] && "$python" -c 'import torch' 2>/dev/null; then
    for t in $threads; do
        run env OPENBLAS_NUM_THREADS="$t" "$bin/vs_pytorch" --threads "$t" --steps "$steps" \
            --configs "$configs" --masks "$masks" --python "$python"
    done
else
    echo "(no PyTorch at $python: install python3-torch; mimae side only)"
    for t in $threads; do
        run env OPENBLAS_NUM_THREADS="$t" "$bin/vs_pytorch" --threads "$t" --steps "$steps" \
            --configs "$configs" --masks "$masks" --no-torch
    done
fi

echo "=== 2b. bf16 products against f32 on the small configs (batch 64, 1 thread)"
if [ "$bf16" = 1 ]; then
    for c in ${configs//,/ }; do
        run env OPENBLAS_NUM_THREADS=1 "$bin/pair" --compare precision --config "$c" --masks 4 \
            --batch 64 --steps "${BENCH_STEPS:-3}" --warmup 1
    done
else
    echo "(no AVX512-BF16 or AMX-BF16 on this CPU: bf16 rows skipped)"
fi

echo "=== 3. memory: peak RSS against the analytic bytes (1 process, batch 64)"
for c in ${configs//,/ }; do
    for n in ${masks//,/ }; do
        run env OPENBLAS_NUM_THREADS=1 "$bin/memory" "$c" "$n"
    done
done

echo "=== 4. scaling: 1 vs 2 ranks, 32 images per rank, fmnist MI-MAE"
if command -v mpirun >/dev/null; then
    run env OPENBLAS_NUM_THREADS=1 mpirun -n 2 "$bin/scaling" --config fmnist --masks 4 \
        --batch 32 --steps "${BENCH_STEPS:-3}"
else
    echo "(no mpirun)"
fi

echo "=== 5. ViT-B/16 (preset vit-b16), one process: both methods, per-rank batch 1 and 8,"
echo "    1 and 2 threads, the phase breakdown, PyTorch on the same step; the deterministic"
echo "    reduction and bf16 against f32, each pair's steps interleaved in one process (1 thread);"
echo "    bf16 MI-MAE at batch 1 and 8 on 1 and 2 threads for the north star"
if [ "${BENCH_VITB:-1}" != 0 ]; then
    have_torch=0
    [ -x "$python" ] && "$python" -c 'import torch' 2>/dev/null && have_torch=1
    for t in 1 2; do
        for n in 4 1; do
            for b in 1 8; do
                # at batch 1 both reductions run the same step (one micro-batch)
                run env OPENBLAS_NUM_THREADS="$t" "$bin/vitb" --masks "$n" --batch "$b" \
                    --reduction fast --steps "${BENCH_VITB_STEPS:-2}" --warmup 1
                # the reductions on MAE, whose 50-token images make the widest gap
                # (MI-MAE's takes 4x the time to show a smaller one)
                [ "$b" = 8 ] && [ "$t" = 1 ] && [ "$n" = 1 ] && run env OPENBLAS_NUM_THREADS=1 \
                    "$bin/pair" --compare reduction --masks 1 --batch 8 \
                    --steps "${BENCH_VITB_STEPS:-2}" --warmup 1
                if [ "$have_torch" = 1 ] && [ "$t" = 1 ]; then
                    run env OPENBLAS_NUM_THREADS="$t" OMP_NUM_THREADS="$t" "$python" \
                        bench/vs_pytorch.py --preset vitb16 --masks "$n" --threads "$t" \
                        --batch "$b" --steps "${BENCH_VITB_STEPS:-2}" --warmup 1
                fi
            done
        done
    done
    # bf16 (train.precision): against f32 on the same step, and the rows the north star needs
    if [ "$bf16" = 1 ]; then
        for n in 4 1; do
            run env OPENBLAS_NUM_THREADS=1 "$bin/pair" --compare precision --masks "$n" \
                --batch 8 --steps "${BENCH_VITB_STEPS:-2}" --warmup 1
        done
        for t in 1 2; do
            for b in 1 8; do
                run env OPENBLAS_NUM_THREADS="$t" "$bin/vitb" --masks 4 --batch "$b" \
                    --reduction fast --precision bf16 --steps "${BENCH_VITB_STEPS:-2}" --warmup 1
            done
        done
    fi
    # the north star, from the MI-MAE fast rows (batch 8 at 1 and 2 threads, batch 1), per precision
    for p in f32 bf16; do
        eval "$(awk -v p="$p" '
        function kv(line, key,   n, i, a, q) {
            n = split(line, a, " ")
            for (i = 1; i <= n; i++) { q = index(a[i], "="); if (substr(a[i], 1, q - 1) == key) return substr(a[i], q + 1) }
            return ""
        }
        /^RESULT vitb / && kv($0, "method") == "MI-MAE" && kv($0, "precision") == p && kv($0, "reduction") == "fast" {
            if (kv($0, "batch") == 1 && kv($0, "threads") == 1) ms_b1 = kv($0, "ms")
            if (kv($0, "batch") == 8 && kv($0, "threads") == 1) { ms1 = kv($0, "ms"); st = kv($0, "state_mib"); an = kv($0, "analytic_mib") }
            if (kv($0, "batch") == 8 && kv($0, "threads") == 2) ms2 = kv($0, "ms")
        }
        END { if (ms1 && ms2 && ms_b1) printf "ns_img=%.5f ns_img1=%.5f ns_s2=%.4f ns_state=%.0f ns_act=%.1f\n", 8000 / ms1, 1000 / ms_b1, ms1 / ms2, st, (an - st) / 8; else print "ns_img=" }
        ' "$log")"
        if [ -n "${ns_img:-}" ]; then
            run "$bin/northstar" --img-s "$ns_img" --img-s-batch1 "$ns_img1" --speedup2 "$ns_s2" \
                --state-mib "$ns_state" --act-mib-per-image "$ns_act" --precision "$p"
            [ "$p" = f32 ] && step_img_s=$ns_img
        fi
    done
else
    echo "(BENCH_VITB=0: skipped)"
fi

echo "=== 6. data path: import on 1 and 2 ranks, global and shard-local reading, the reader"
echo "    against a ViT-B/16 MI-MAE step's consumption"
if [ "${BENCH_DATA:-1}" != 0 ] && command -v mpirun >/dev/null; then
    # the step's rate: the MI-MAE batch-8 1-thread row when it ran (img/s of one rank)
    run env OPENBLAS_NUM_THREADS=1 "$bin/data" --step-img-s "${step_img_s:-0.56}"
else
    echo "(BENCH_DATA=0 or no mpirun: skipped)"
fi

elapsed=$(( $(date +%s) - start ))
echo "=== summary (bench/run.sh $build, ${elapsed} s; targets from issues 8 and 13)"
awk -v elapsed="$elapsed" '
function kv(line, key,   n, i, a, p) {
    n = split(line, a, " ")
    for (i = 1; i <= n; i++) { p = index(a[i], "="); if (substr(a[i], 1, p - 1) == key) return substr(a[i], p + 1) }
    return ""
}
function row(what, value, target, ok) {
    printf "| %-52s | %-40s | %-7s | %-4s |\n", what, value, target, ok
}
BEGIN {
    printf "| %-52s | %-40s | %-7s | %-4s |\n", "measure", "value", "target", "met"
    printf "|%s|%s|%s|%s|\n", "------------------------------------------------------", "------------------------------------------", "---------", "------"
}
/^RESULT mfu_peak/ {
    row("cblas_sgemm peak, 1 thread", sprintf("%.1f GFLOP/s (kernel %s; %.1f at the start)", kv($0, "peak_gflops"), kv($0, "core"), kv($0, "blas_gflops")), "", "")
}
/^RESULT mfu / {
    f = kv($0, "frac") + 0
    row(sprintf("MFU %s %s, 1 thread", kv($0, "config"), kv($0, "method")), sprintf("%.1f%% (%.1f GFLOP/s, %.0f ms)", 100 * f, kv($0, "gflops"), kv($0, "ms")), ">= 60%", (f >= 0.6 ? "yes" : "no"))
}
/^RESULT vs_pytorch / {
    s = kv($0, "speedup") + 0
    row(sprintf("vs PyTorch %s %s, %s thread(s)", kv($0, "config"), kv($0, "method"), kv($0, "threads")), sprintf("%.2fx (%.0f vs %.0f ms/step)", s, kv($0, "mimae_ms"), kv($0, "torch_ms")), ">= 2.0x", (s >= 2.0 ? "yes" : (s == 0 ? "n/a" : "no")))
}
/^RESULT memory / {
    r = kv($0, "ratio") + 0
    row(sprintf("peak RSS / analytic, %s %s", kv($0, "config"), kv($0, "method")), sprintf("%.3f (%.0f / %.0f MiB)", r, kv($0, "peak_mib"), kv($0, "analytic_mib")), "<= 1.2", (r <= 1.2 ? "yes" : "no"))
}
/^RESULT scaling reduction/ {
    e = kv($0, "eff") + 0; c = kv($0, "comm_frac") + 0; r = kv($0, "rss_ratio") + 0
    row(sprintf("scaling %s, 1 -> %s ranks: efficiency", kv($0, "reduction"), kv($0, "ranks")), sprintf("%.3f (%.0f -> %.0f ms/step)", e, kv($0, "step1_ms"), kv($0, "stepR_ms")), ">= 0.9", (e >= 0.9 ? "yes" : "no"))
    row(sprintf("scaling %s: exposed communication", kv($0, "reduction")), sprintf("%.1f%% (%.1f ms; imbalance %.1f ms)", 100 * c, kv($0, "comm_ms"), kv($0, "imbalance_ms")), "< 5%", (c < 0.05 ? "yes" : "no"))
    row(sprintf("scaling %s: peak RSS / analytic per rank", kv($0, "reduction")), sprintf("%.3f (%.0f MiB)", r, kv($0, "rss_mib")), "<= 1.2", (r <= 1.2 ? "yes" : "no"))
}
/^RESULT vitb / && kv($0, "precision") == "bf16" {
    row(sprintf("ViT-B/16 %s batch %s bf16, %s thread(s)", kv($0, "method"), kv($0, "batch"), kv($0, "threads")), sprintf("%.0f ms/step, %.3f img/s (%.0f%% of the f32 sgemm peak)", kv($0, "ms"), kv($0, "img_s"), 100 * kv($0, "mfu")), "", "")
    next
}
/^RESULT vitb / {
    k = kv($0, "method") " b" kv($0, "batch") " " kv($0, "reduction") " " kv($0, "threads") "t"
    vitb_ms[k] = kv($0, "ms"); f = kv($0, "mfu") + 0
    row(sprintf("ViT-B/16 %s batch %s %s, %s thread(s): MFU", kv($0, "method"), kv($0, "batch"), kv($0, "reduction"), kv($0, "threads")), sprintf("%.1f%% (%.0f ms/step, %.3f img/s)", 100 * f, kv($0, "ms"), kv($0, "img_s")), ">= 85%", (kv($0, "threads") == 1 ? (f >= 0.85 ? "yes" : "no") : ""))
    r = kv($0, "rss_mib") / kv($0, "analytic_mib")
    row(sprintf("ViT-B/16 %s batch %s %s, %s thread(s): RSS/analytic", kv($0, "method"), kv($0, "batch"), kv($0, "reduction"), kv($0, "threads")), sprintf("%.2f (%.0f MiB)", r, kv($0, "rss_mib")), "<= 1.2", (r <= 1.2 ? "yes" : "no"))
}
/^RESULT vitb_ceiling / && kv($0, "precision") == "f32" && kv($0, "threads") == 1 {
    row(sprintf("ViT-B/16 %s batch %s, 1 thread: MFU ceiling", kv($0, "method"), kv($0, "batch")), sprintf("%.1f%% (products %.0f%%, attention %.0f%% of peak)", 100 * kv($0, "mfu_ceiling"), 100 * kv($0, "products_eff"), 100 * kv($0, "attention_eff")), "", "")
    row(sprintf("ViT-B/16 %s batch %s, 1 thread: update GB/s", kv($0, "method"), kv($0, "batch")), sprintf("%.1f (stream triad %.1f)", kv($0, "update_gbs"), kv($0, "triad_gbs")), "", "")
}
/^RESULT pair compare=reduction/ {
    r = kv($0, "ratio") + 0
    row(sprintf("ViT-B/16 %s b%s %st: deterministic (%s img/micro-batch) / fast", kv($0, "method"), kv($0, "batch"), kv($0, "threads"), kv($0, "micro_batch")), sprintf("%.3f (%.0f vs %.0f ms/step)", r, kv($0, "b_ms"), kv($0, "a_ms")), "<= 1.05", (r <= 1.05 ? "yes" : "no"))
    row("  its floor: the split weight-gradient products alone", sprintf("%.3f", kv($0, "floor_ratio")), "", "")
}
/^RESULT pair compare=precision/ {
    r = kv($0, "ratio") + 0
    row(sprintf("%s %s b%s %st: bf16 speed-up over f32", kv($0, "config"), kv($0, "method"), kv($0, "batch"), kv($0, "threads")), sprintf("%.2fx (%.0f vs %.0f ms; products %.0f%% -> %.0f%%)", 1 / r, kv($0, "a_ms"), kv($0, "b_ms"), 100 * kv($0, "a_products"), 100 * kv($0, "b_products")), "", "")
}
/^torch / && index($0, "preset=vitb16") {
    tk = (kv($0, "masks") == 1 ? "MAE" : "MI-MAE") " b" kv($0, "batch") " fast 1t"
    torch_ms[tk] = kv($0, "ms_per_step")
}
/^RESULT northstar/ {
    row(sprintf("north star (%s): ViT-B/16 MI-MAE 400 ep, 64 x 64 cores", kv($0, "precision")), sprintf("%.1f days (%s ranks x %s threads a node, %.0f GB a node)", kv($0, "days"), kv($0, "ranks_per_node"), kv($0, "threads"), kv($0, "gb_per_node")), "", "")
}
/^RESULT data_import / {
    row(sprintf("import, %s rank(s): images/s", kv($0, "ranks")), sprintf("%.1f (%s images in %.1f s)", kv($0, "img_s"), kv($0, "images"), kv($0, "seconds")), "", "")
}
/^RESULT data_import_speedup/ {
    r = kv($0, "ratio") + 0
    row("import, 2 ranks / 1", sprintf("%.2fx", r), ">= 1.8x", (r >= 1.8 ? "yes" : "no"))
}
/^RESULT data_reader / {
    row(sprintf("reader, %s, one of 2 ranks: images/s", kv($0, "mode")), sprintf("%.0f (%.0f with augmentation)", kv($0, "img_s"), kv($0, "augment_img_s")), "", "")
}
/^RESULT data_reader_cost/ {
    row("reader: cost of global over shard-local sampling", sprintf("%.2fx the time", kv($0, "global_over_local")), "", "")
}
/^RESULT data_wait/ {
    f = kv($0, "wait_frac") + 0; q = kv($0, "reader_over_step") + 0
    row("reader / what a ViT-B/16 MI-MAE step consumes", sprintf("%.0fx (%.3f img/s a rank)", q, kv($0, "step_img_s")), ">= 10x", (q >= 10 ? "yes" : "no"))
    row(sprintf("data_wait_s at %sx that rate", kv($0, "margin")), sprintf("%.2g s per %.2f s step (%.3f%%)", kv($0, "wait_mean_s"), kv($0, "step_s"), 100 * f), "< 1%", (f < 0.01 ? "yes" : "no"))
}
/^RESULT scaling_model/ {
    e = kv($0, "eff") + 0
    row(sprintf("cost model %s, %s ranks: step, efficiency", kv($0, "reduction"), kv($0, "ranks")), sprintf("%.0f ms, %.3f", kv($0, "pred_ms"), e), ">= 0.9", (e >= 0.9 ? "yes" : "no"))
}
END {
    for (k in torch_ms) if (k in vitb_ms)
        row("ViT-B/16 " k ": vs PyTorch", sprintf("%.2fx (%.0f vs %.0f ms/step)", torch_ms[k] / vitb_ms[k], vitb_ms[k], torch_ms[k]), "", "")
    for (k in vitb_ms) {
        split(k, w, " ")
        if (w[4] == "2t") { o = w[1] " " w[2] " " w[3] " 1t"; if ((o in vitb_ms) && w[2] == "b8") row("ViT-B/16 " w[1] " " w[2] " " w[3] ": 2 threads / 1 thread", sprintf("%.2fx", vitb_ms[o] / vitb_ms[k]), ">= 1.8x", (vitb_ms[o] / vitb_ms[k] >= 1.8 ? "yes" : "no")) }
    }
    printf "(wall time of the benchmarks: %d s)\n", elapsed
}
' "$log"
