# mimae build. `make` builds everything, `make test` runs the suite and ends
# with "N passed, N failed", `make test SANITIZE=1` does so under ASan+UBSan,
# `make deps` installs the Debian packages.

PKGS      := openblas mpi-c hdf5-openmpi scalapack-openmpi cmocka inih libpng zlib libjpeg
DEB_PKGS  := build-essential pkg-config openmpi-bin libopenmpi-dev libopenblas-dev \
             libhdf5-openmpi-dev hdf5-tools libscalapack-openmpi-dev libcmocka-dev \
             libinih-dev libpng-dev zlib1g-dev libjpeg-dev dataset-fashion-mnist \
             slurm-wlm gnuplot-nox clang libclang-rt-14-dev python3-h5py python3-matplotlib \
             libgsl-dev libdnnl-dev
# Programs (not libraries) the tests and tools call.
DEB_TOOLS := slurmctld gnuplot clang

CC        := gcc
SANITIZE  ?= 0
BUILD     := build$(if $(filter 1,$(SANITIZE)),-san,)

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# The layers see only their own libraries' headers, so the build enforces
# them: core/ gets OpenBLAS and oneDNN (an #include <mpi.h> or <hdf5.h> there
# fails), dist/ MPI and BLAS, io/ HDF5 and the image libraries (HDF5's
# header pulls in mpi.h, so io's freedom from MPI calls is checked on its
# library instead, by the nm check of libmimae_io.a), experiments/ io's and inih.
# oneDNN's header is in /usr/include, which every layer sees, so that only
# core/ calls oneDNN is checked on the other layers' libraries (nm).
, := ,
pkgflags    = $(shell pkg-config --cflags $(1) 2>/dev/null)
CORE_CFLAGS := $(call pkgflags,openblas)
DIST_CFLAGS := $(call pkgflags,openblas mpi-c)
IO_CFLAGS   := $(call pkgflags,openblas hdf5-openmpi libpng zlib libjpeg)
EXP_CFLAGS  := $(call pkgflags,openblas hdf5-openmpi libpng zlib libjpeg inih gsl)

BASE_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -O3 -g -Wall -Wextra -Wshadow \
             -Wstrict-prototypes -Wmissing-prototypes -Werror=implicit-function-declaration \
             -MMD -MP -I. \
             $(if $(filter 1,$(SANITIZE)),-fsanitize=address$(,)undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
CFLAGS    := $(BASE_CFLAGS) $(PKG_CFLAGS)
# GSL (the report's t quantile) is linked as -lgsl alone, before OpenBLAS:
# pkg-config's -lgslcblas would bring a second cblas_sgemm, and the one our
# kernels call must stay OpenBLAS's (test_report_stats checks which is bound).
# oneDNN (the bf16 products, core/kernels/bf16_matmul.h) has no pkg-config file
# either: -ldnnl, and -lgomp for the OpenMP runtime it is built on, whose
# thread count core/kernels/bf16_matmul.c sets.
LDLIBS    := -lgsl $(PKG_LIBS) -ldnnl -lgomp -lm
ifeq ($(SANITIZE),1)
LDFLAGS   += -fsanitize=address,undefined
endif

# Libraries: core (no MPI, no HDF5), io (HDF5, PNG, JPEG), dist (MPI,
# ScaLAPACK), experiments (descriptors, sweeps, reports); programs in the top
# level wire them together.
CORE_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard core/*/*.c))
IO_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(wildcard io/*.c))
DIST_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard dist/*.c))
EXP_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard experiments/*.c))
LIBS      := $(BUILD)/libmimae_experiments.a $(BUILD)/libmimae_dist.a $(BUILD)/libmimae_io.a \
             $(BUILD)/libmimae_core.a
PROGRAMS  := $(patsubst %.c,$(BUILD)/%,$(wildcard mimae*.c))
# run/: what the programs share that wires the layers together (the training
# run, evaluation, fault injection).
RUN_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard run/*.c))
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_UTIL := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
TEST_UTIL_OBJ := $(TEST_UTIL:%.c=$(BUILD)/%.o)
# MPI programs that tests start under mpirun (not tests themselves).
MPI_HELPERS := $(patsubst tests/mpi/%.c,$(BUILD)/tests/mpi/%,$(wildcard tests/mpi/*.c))

# The allocation-count test wraps the C allocator for our own objects.
WRAP_ALLOC := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=posix_memalign,--wrap=aligned_alloc

.PHONY: all test deps check-deps clean bench fuzz fuzz-long demo
.SECONDARY:
all: $(LIBS) $(PROGRAMS) $(TEST_BIN) $(MPI_HELPERS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(GIT_DEFINE) -c $< -o $@

# mimae's own git commit, recorded in every results file (io/results.c):
# `git rev-parse --short HEAD` of this source tree ("-dirty" with changes to
# tracked files), "unknown" when the tree is not a git checkout of its own.
# The stamp file changes only with the value, so results.o is rebuilt then.
SRC_DIR    := $(patsubst %/,%,$(dir $(abspath $(firstword $(MAKEFILE_LIST)))))
GIT_COMMIT := $(shell cd '$(SRC_DIR)' && [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$$(pwd -P)" ] && \
                git rev-parse --short HEAD 2>/dev/null && exit 0; echo unknown)
GIT_COMMIT := $(GIT_COMMIT)$(if $(filter-out unknown,$(GIT_COMMIT)),$(if $(shell cd '$(SRC_DIR)' && \
                git status --porcelain --untracked-files=no 2>/dev/null | head -n 1),-dirty))
$(BUILD)/git_commit.txt: FORCE
	@mkdir -p $(dir $@)
	@[ "$$(cat $@ 2>/dev/null)" = "$(GIT_COMMIT)" ] || echo "$(GIT_COMMIT)" > $@
$(BUILD)/io/results.o: $(BUILD)/git_commit.txt
$(BUILD)/io/results.o: GIT_DEFINE := -DMIMAE_GIT_COMMIT='"$(GIT_COMMIT)"'
.PHONY: FORCE
FORCE:

$(BUILD)/core/%.o: CFLAGS := $(BASE_CFLAGS) $(CORE_CFLAGS)
$(BUILD)/dist/%.o: CFLAGS := $(BASE_CFLAGS) $(DIST_CFLAGS)
$(BUILD)/io/%.o: CFLAGS := $(BASE_CFLAGS) $(IO_CFLAGS)
$(BUILD)/experiments/%.o: CFLAGS := $(BASE_CFLAGS) $(EXP_CFLAGS)

# Only core/ calls oneDNN (core/kernels/bf16_matmul.c); the layers above use that.
NO_ONEDNN = @! nm -u $@ | grep -w 'U dnnl_[A-Za-z0-9_]*' || \
  { echo "layers: $@ calls oneDNN (above): go through core/kernels/bf16_matmul.h"; rm -f $@; exit 1; }

$(BUILD)/libmimae_core.a: $(CORE_OBJ)
	@mkdir -p $(dir $@); rm -f $@
	ar rcs $@ $^
$(BUILD)/libmimae_io.a: $(IO_OBJ)
	@mkdir -p $(dir $@); rm -f $@
	ar rcs $@ $^
	$(NO_ONEDNN)
	@! nm -u $@ | grep -w 'U P\?MPI_[A-Za-z_]*' || \
	  { echo "layers: io/ calls MPI (above): pass what it needs in from dist/ or run/"; rm -f $@; exit 1; }
$(BUILD)/libmimae_dist.a: $(DIST_OBJ)
	@mkdir -p $(dir $@); rm -f $@
	ar rcs $@ $^
	$(NO_ONEDNN)
$(BUILD)/libmimae_experiments.a: $(EXP_OBJ)
	@mkdir -p $(dir $@); rm -f $@
	ar rcs $@ $^
	$(NO_ONEDNN)

$(PROGRAMS): $(BUILD)/%: $(BUILD)/%.o $(RUN_OBJ) $(LIBS)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lpthread
	@case $@ in *mimae_dist) ! nm $@ | grep -qw bounded_read || \
	  { echo "layers: mimae_dist (MPI) must not fork readers (io/bounded_read.h)"; rm -f $@; exit 1; };; esac

$(MPI_HELPERS): $(BUILD)/tests/mpi/%: $(BUILD)/tests/mpi/%.o $(LIBS)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lpthread

$(BENCH_BIN): $(BUILD)/bench/%: $(BUILD)/bench/%.o $(RUN_OBJ) $(LIBS)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lpthread

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_UTIL_OBJ) $(RUN_OBJ) $(LIBS)
	$(CC) $(LDFLAGS) $(WRAP_ALLOC) $^ -o $@ $(LDLIBS) -lpthread

# `make test` installs missing packages first (deps-if-missing), then runs
# every test binary through the runner, which prints the summary line.
test: check-deps
	@$(MAKE) --no-print-directory all SANITIZE=$(SANITIZE)
	@tests/run_tests.sh $(BUILD)/tests

# Benchmarks print ratios measured in one run (bench/README.md).
# PyTorch is only the benchmarks' peer: installed by `make bench`, not by `make deps`.
BENCH_DEB_PKGS := python3-torch
bench: check-deps
	@/usr/bin/python3 -c 'import torch' 2>/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y $(BENCH_DEB_PKGS); } || \
	  echo "make bench: no PyTorch (apt-get install $(BENCH_DEB_PKGS)): timing mimae only"
	@$(MAKE) --no-print-directory all $(BENCH_BIN) SANITIZE=0
	@bench/run.sh $(BUILD)

# libFuzzer targets, each run for a bounded time (tests/fuzz/README.md).
fuzz: check-deps
	@$(MAKE) --no-print-directory all SANITIZE=0
	@tests/fuzz/run.sh

# Five minutes a target: what it takes to meet HDF5's own failures on damaged
# files (tests/fuzz/README.md, "Inside HDF5").
fuzz-long: check-deps
	@$(MAKE) --no-print-directory all SANITIZE=0
	@FUZZ_TIME=$${FUZZ_TIME:-300} tests/fuzz/run.sh

# The main job: MI-MAE and MAE on Fashion-MNIST, evaluated and compared.
DEMO_DIR ?= demo
demo: check-deps
	@$(MAKE) --no-print-directory all SANITIZE=0
	@experiments/demo.sh $(BUILD) $(DEMO_DIR)

# Libraries without a pkg-config file, known to be installed when the compiler
# finds their header and their library: oneDNN (libdnnl-dev).
NOPC_HEADERS := oneapi/dnnl/dnnl.h
NOPC_LIBS    := libdnnl.so

# A subshell, so that a missing piece's `exit 1` leads to `make deps` rather
# than ending the recipe.
check-deps:
	@( pkg-config --exists $(PKGS) gsl && for t in $(DEB_TOOLS); do command -v $$t >/dev/null || exit 1; done && \
	   for h in $(NOPC_HEADERS); do echo "#include <$$h>" | $(CC) -E -x c - >/dev/null 2>&1 || exit 1; done && \
	   for l in $(NOPC_LIBS); do [ -e "$$($(CC) -print-file-name=$$l)" ] || exit 1; done ) \
	  || $(MAKE) --no-print-directory deps

deps:
	@if [ "$$(id -u)" = 0 ]; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(DEB_PKGS); \
	else \
	  echo "run as root: apt-get update && apt-get install -y $(DEB_PKGS)"; exit 1; \
	fi

clean:
	rm -rf build build-san

-include $(wildcard $(BUILD)/*.d $(BUILD)/*/*.d $(BUILD)/*/*/*.d)
