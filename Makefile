# umbra: build the core library, the Lua module and the executable; run the tests.
# `make` builds; `make test`, `make lint`, `make demo`, `make memcheck`, `make asan`, `make bench`,
# `make fuzz FUZZ_SECONDS=60` (libFuzzer, needs clang),
# `make install PREFIX=...`, `make clean`. Missing Debian packages are installed by
# scripts/install-deps (as root) or named with the command to run.

PREFIX ?= /usr/local
BUILD ?= build
CUDA_HOME ?= /usr/local/cuda
# CUDA=1 when nvcc and cuDNN's header are there (or given: make CUDA=1 CUDA_CFLAGS=-I...)
CUDA ?= $(shell test -x $(CUDA_HOME)/bin/nvcc && test -f $(CUDA_HOME)/include/cudnn.h && echo 1 || echo 0)

# `make DEPS_STATUS=0` skips the check (scripts/gpu-check builds offline against its own
# prefix): GNU make still runs the $(shell) of an assignment the command line overrides,
# so the assignment is made only when the variable comes from nowhere else.
ifeq ($(filter clean help,$(MAKECMDGOALS)),)
ifeq ($(origin DEPS_STATUS),undefined)
DEPS_STATUS := $(shell scripts/ensure-deps >&2; echo $$?)
endif
ifneq ($(DEPS_STATUS),0)
$(error missing dependencies (see above))
endif
endif

PKGS := lua5.4 openblas hdf5 check matio libpng zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs lua5.4 openblas hdf5 matio libpng zlib 2>/dev/null)
# MPI for core/dist/ (Open MPI's pkg-config name; MPI_CFLAGS/MPI_LIBS name another MPI).
# Only core/dist/ includes mpi.h; linking libmpi costs a plain run nothing until
# dist.init() finds a launcher (docs/distributed.md).
MPI_CFLAGS ?= $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS ?= $(shell pkg-config --libs ompi-c 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

SIMD := $(shell grep -q -w avx2 /proc/cpuinfo 2>/dev/null && grep -q -w fma /proc/cpuinfo 2>/dev/null && echo -mavx2 -mfma)
# -O2's vectoriser (GCC 12) takes only loops that need no run-time check that their
# arrays are apart, so every elementwise loop over (out, a, b), PGD's update and the
# optimisers stayed scalar; the dynamic cost model adds those checks (no reassociation:
# the same numbers).
OPT ?= -O2 -fvect-cost-model=dynamic $(SIMD)
CFLAGS ?= $(OPT) -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fPIC -fopenmp -Icore $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS := $(PKG_LIBS) $(MPI_LIBS) -lreadline -lgomp -lm -lpthread $(EXTRA_LDFLAGS)

# The engine is one library per folder; dependencies run one way (docs/architecture.md):
# base (core/*.c) <- nn, ood, io, data; the backends (cpu/, the CUDA loader) hold the
# kernels behind the tables of base, nn and ood; dist (MPI collectives) uses base and nn.
# An application that embeds only the engine links base + nn + cpu
# (build/libumbra_engine.a), without HDF5, matio, libpng or MPI.
FOLDERS := base nn ood io data dist cpu cudaload
base_SRC := $(wildcard core/*.c)
nn_SRC := $(wildcard core/nn/*.c)
ood_SRC := $(wildcard core/ood/*.c)
io_SRC := $(wildcard core/io/*.c)
data_SRC := $(wildcard core/data/*.c)
dist_SRC := $(wildcard core/dist/*.c)
cpu_SRC := $(wildcard core/cpu/*.c core/cpu/conv/*.c)
cudaload_SRC := core/cuda/cuda_load.c
CORE_SRC := $(foreach f,$(FOLDERS),$($(f)_SRC))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
FOLDER_LIBS := $(foreach f,$(FOLDERS),$(BUILD)/libumbra_$(f).a)
ENGINE_LIB := $(BUILD)/libumbra_engine.a
BIND_SRC := $(filter-out lua/main.c lua/repl.c,$(wildcard lua/*.c))
EXE_OBJ := $(BUILD)/lua/main.o $(BUILD)/lua/repl.o
BIND_OBJ := $(BIND_SRC:%.c=$(BUILD)/%.o)

ifeq ($(CUDA),1)
# CUDA backend (core/cuda/*.cu): a library of its own, libumbra_cuda.so beside the Lua
# module, linked with cuBLAS and cuDNN from CUDA_HOME (CUDA_CFLAGS and CUDA_LDFLAGS add
# other places: scripts/gpu-check uses them for a cuDNN found elsewhere). The core loads it
# on first use (core/cuda/cuda_load.c); it takes umbra's own functions from the program that
# loads it, which is why the executable and the C tests export theirs (-E, whole archive).
NVCC ?= $(CUDA_HOME)/bin/nvcc
CUDA_SRC := $(wildcard core/cuda/*.cu)
CUDA_OBJ := $(CUDA_SRC:%.cu=$(BUILD)/%.o)
CUDA_SO := $(BUILD)/lua/umbra/libumbra_cuda.so
CUDA_LIBS := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 $(CUDA_LDFLAGS) -lcudart -lcublas -lcudnn -lstdc++
# CUDA_ARCH: the GPUs to build for (A100, A10/RTX 30xx, L4/RTX 40xx, H100), plus PTX of
# the last one, which newer GPUs compile when the library loads.
CUDA_ARCH ?= sm_80 sm_86 sm_89 sm_90
CUDA_PTX := $(lastword $(CUDA_ARCH))
NVFLAGS := -O2 -std=c++17 -Xcompiler -fPIC,-Wall -Icore $(CUDA_CFLAGS) \
           $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(a:sm_%=%),code=$(a)) \
           -gencode arch=compute_$(CUDA_PTX:sm_%=%),code=compute_$(CUDA_PTX:sm_%=%)
else
CUDA_OBJ :=
CUDA_SO :=
endif
override CFLAGS += -DUM_CUDA_BUILD_LIB='"$(if $(CUDA_SO),$(abspath $(CUDA_SO)))"'

LIB := $(BUILD)/libumbra.a
CORE_SO := $(BUILD)/lua/umbra/core.so
EXE := $(BUILD)/umbra
C_TESTS := $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(filter-out tests/c/check_main.c,$(wildcard tests/c/test_*.c)))
# The fuzz entry points (tests/fuzz/): replayed over their committed corpora as a C suite.
FUZZ_SRC := $(filter-out tests/fuzz/libfuzzer.c tests/fuzz/replay.c,$(wildcard tests/fuzz/*.c))
FUZZ_REPLAY := $(BUILD)/tests/test_fuzz_replay
C_TESTS += $(FUZZ_REPLAY)

.PHONY: check-layers all test test-c test-lua lint docs memcheck asan fuzz fuzz-bins demo bench install clean help
all: $(LIB) $(FOLDER_LIBS) $(ENGINE_LIB) $(CORE_SO) $(EXE) $(CUDA_SO)

# Header dependencies come from the compiler (-MMD -MP), one .d file beside each object.
$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -c $< -o $@

$(dist_SRC:%.c=$(BUILD)/%.o): override CFLAGS += $(MPI_CFLAGS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

define folder_lib
$(BUILD)/libumbra_$(1).a: $$($(1)_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $$(dir $$@)
	rm -f $$@ && $$(AR) rcs $$@ $$^
endef
$(foreach f,$(FOLDERS),$(eval $(call folder_lib,$(f))))

$(LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(ENGINE_LIB): $(base_SRC:%.c=$(BUILD)/%.o) $(nn_SRC:%.c=$(BUILD)/%.o) $(cpu_SRC:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

WHOLE_LIB := -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive

$(CORE_SO): $(BIND_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(BIND_OBJ) $(WHOLE_LIB) $(filter-out -llua5.4,$(LDLIBS)) -ldl -fopenmp

$(EXE): $(EXE_OBJ) $(BIND_OBJ) $(LIB)
	$(CC) -o $@ $(EXE_OBJ) $(BIND_OBJ) $(WHOLE_LIB) $(LDLIBS) -Wl,-E -ldl -fopenmp

$(CUDA_SO): $(CUDA_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $^ $(CUDA_LIBS)

$(BUILD)/tests/%: tests/c/%.c tests/c/check_main.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -Itests/c -o $@ $< $(WHOLE_LIB) $(CHECK_LIBS) $(LDLIBS) -Wl,-E -ldl

$(FUZZ_REPLAY): tests/fuzz/replay.c $(FUZZ_SRC) tests/fuzz/fuzz.h tests/c/check_main.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -Itests/c -Itests/fuzz -o $@ tests/fuzz/replay.c $(FUZZ_SRC) $(WHOLE_LIB) $(CHECK_LIBS) $(LDLIBS) -Wl,-E -ldl

# test_nccl_abi compares core/dist/nccl.h with NCCL's own header where one is installed
$(BUILD)/tests/test_nccl_abi: override CFLAGS += $(if $(wildcard $(CUDA_HOME)/include/nccl.h),-I$(CUDA_HOME)/include)

# A stand-in for libnccl.so.2 (reductions through MPI on host memory) for the NCCL path's
# tests without a GPU (tests/lua/dist_nccl_spec.lua).
FAKE_NCCL := $(BUILD)/tests/libfake_nccl.so
$(FAKE_NCCL): tests/c/fake_nccl.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_CFLAGS) -shared -o $@ $< $(MPI_LIBS)

# libFuzzer binaries, one per target (build-fuzz/fuzz/<target>), from a clang build of the
# library with ASan and UBSan; `make fuzz` runs each for FUZZ_SECONDS (scripts/run-fuzz).
FUZZ_TARGETS := idx cifar svhn png h5 h5_resealed tfckpt sstable
FUZZ_SECONDS ?= 60
FUZZ_SEED ?=
FUZZ_CC ?= clang
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/%: tests/fuzz/libfuzzer.c $(FUZZ_SRC) tests/fuzz/fuzz.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Itests/fuzz -DUM_FUZZ_ENTRY=um_fuzz_$* -o $@ tests/fuzz/libfuzzer.c $(FUZZ_SRC) $(LIB) $(LDLIBS)

fuzz:
	@FUZZ_CC=$(FUZZ_CC) scripts/ensure-deps --fuzz
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) CUDA=0 OPT="-O1" EXTRA_CFLAGS="-fsanitize=fuzzer-no-link $(FUZZ_SAN) -Wno-pass-failed -Wno-unknown-attributes" EXTRA_LDFLAGS="$(FUZZ_SAN)" fuzz-bins
	FUZZ_SEED=$(FUZZ_SEED) scripts/run-fuzz build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The engine alone (base + nn + cpu), linked without HDF5, matio, libpng or Lua.
ENGINE_LIBS := $(shell pkg-config --libs openblas 2>/dev/null) -lgomp -lm -lpthread
EMBED_TEST := $(BUILD)/tests/embed/engine_only
$(EMBED_TEST): tests/embed/engine_only.c $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< -Wl,--start-group $(ENGINE_LIB) -Wl,--end-group $(ENGINE_LIBS) -fopenmp

check-layers:
	@scripts/check-layers

test: all $(C_TESTS) $(EMBED_TEST) $(FAKE_NCCL) check-layers
	@$(EMBED_TEST)
	@BUILD=$(BUILD) scripts/run-tests

# luacheck over the Lua files .luacheckrc names; `make test` counts it as one check
lint:
	@scripts/run-tests lint

# docs/api.md from the --- comments in lua/umbra/*.lua (make test checks it is current)
docs: all
	$(EXE) scripts/api-docs.lua docs/api.md

test-c: $(C_TESTS)
	@BUILD=$(BUILD) scripts/run-tests c

test-lua: all
	@BUILD=$(BUILD) scripts/run-tests lua

memcheck: all $(C_TESTS)
	@BUILD=$(BUILD) MEMCHECK=1 scripts/run-tests c

asan:
	$(MAKE) BUILD=build-asan CUDA=0 OPT="-O1" EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer" EXTRA_LDFLAGS="-fsanitize=address,undefined" all $(patsubst $(BUILD)/%,build-asan/%,$(C_TESTS) $(FAKE_NCCL))
	@BUILD=build-asan ASAN=1 scripts/run-tests

demo: all
	$(EXE) recipes/toy2d.lua

bench: all
	scripts/bench/run-all

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/lua/5.4/umbra $(DESTDIR)$(PREFIX)/share/lua/5.4/umbra
	install -m 755 $(EXE) $(DESTDIR)$(PREFIX)/bin/umbra
	install -m 755 $(CORE_SO) $(DESTDIR)$(PREFIX)/lib/lua/5.4/umbra/core.so
	$(if $(CUDA_SO),install -m 755 $(CUDA_SO) $(DESTDIR)$(PREFIX)/lib/lua/5.4/umbra/libumbra_cuda.so)
	install -m 644 lua/umbra/*.lua $(DESTDIR)$(PREFIX)/share/lua/5.4/umbra/
	install -d $(DESTDIR)$(PREFIX)/share/umbra/models $(DESTDIR)$(PREFIX)/share/umbra/recipes/paper
	install -m 644 models/*.lua $(DESTDIR)$(PREFIX)/share/umbra/models/
	install -m 644 recipes/*.lua $(DESTDIR)$(PREFIX)/share/umbra/recipes/
	install -m 644 $(filter-out %.sh,$(wildcard recipes/paper/*)) $(DESTDIR)$(PREFIX)/share/umbra/recipes/paper/
	install -m 755 $(wildcard recipes/paper/*.sh) $(DESTDIR)$(PREFIX)/share/umbra/recipes/paper/

clean:
	rm -rf build build-asan build-fuzz

help:
	@sed -n '1,5p' Makefile
