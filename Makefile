# Thin front door over CMake. `make test` and `make demo` install what is missing
# (apt-get as root; otherwise they print the command to run), build, and go.
BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
PORTABLE_BUILD ?= build-portable
DEB_BUILD  ?= build-deb
JOBS       ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure

APT_PACKAGES = cmake make gcc pkg-config liblua5.4-dev lua5.4 libcurl4-openssl-dev \
  lua-cjson lua-cjson-dev libminizip-dev zlib1g-dev libssl-dev lua-argparse lua-busted \
  lua-check curl openssl zip unzip p7zip-full libarchive-tools pigz python3 python3-requests clang \
  libclang-rt-14-dev time g++ luarocks dpkg-dev aria2
# Node.js may come from elsewhere than Debian (its npm then conflicts with Debian's):
# install Debian's only when the commands are missing.
NODE_PACKAGES = $(if $(shell command -v node),,nodejs) $(if $(shell command -v npm),,npm)

.PHONY: all deps deps-arm64 build asan tsan portable test test-fast test-portable test-portable-suite \
  test-arm64 fuzz demo bench bench-memory bench-arm64 install deb rock clean

all: build

deps:
	@missing="$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done) \
	  $(NODE_PACKAGES)"; missing=$$(echo $$missing); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "Missing packages. Run:"; echo "  sudo apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi
	@if [ ! -f tests/emulator/node_modules/.package-lock.json ] || \
	    [ tests/emulator/package-lock.json -nt tests/emulator/node_modules/.package-lock.json ]; then \
	  npm ci --prefix tests/emulator --no-audit --no-fund --loglevel=error; fi

# The cross toolchain, qemu-user and the arm64 builds of the libraries skafos links, for
# `make test-arm64` and `make bench-arm64` (Debian multiarch: the :arm64 -dev packages sit
# beside the native ones).
ARM64_BUILD ?= build-arm64
ARM64_PACKAGES = gcc-aarch64-linux-gnu qemu-user-static liblua5.4-dev:arm64 \
  libcurl4-openssl-dev:arm64 lua-cjson:arm64 lua-cjson-dev:arm64 libminizip-dev:arm64 \
  zlib1g-dev:arm64 libssl-dev:arm64

deps-arm64: deps
	@missing="$$(for p in $(ARM64_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done)"; \
	missing=$$(echo $$missing); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing: $$missing"; \
	    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "Missing packages. Run:"; \
	    echo "  sudo dpkg --add-architecture arm64 && sudo apt-get update"; \
	    echo "  sudo apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSKAFOS_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# The tests labelled threads (lua_States in threads of one process, transferring at once;
# the fibers of skafos.tasks switching stacks on one thread) under ThreadSanitizer: only the library and those programs are built. Any race it sees
# fails the test (exit 66). Its shadow memory needs the fixed layout of a process without
# address randomisation on kernels with more mmap randomness than it knows
# (vm.mmap_rnd_bits > 28): setarch -R gives it, where the kernel allows.
TSAN_TARGETS = embed_threads embed_signals test_tasks
NO_ASLR = $(shell setarch $$(uname -m) -R true 2>/dev/null && echo setarch $$(uname -m) -R)
tsan: deps
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSKAFOS_TSAN=ON >/dev/null
	cmake --build $(TSAN_BUILD) --target $(TSAN_TARGETS) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS=second_deadlock_stack=1:history_size=4 \
	  $(NO_ASLR) ctest $(CTEST_ARGS) -L threads

# Every Linux-only and x86-only path switched off (cmake/features.cmake): the fallbacks
# macOS and other systems take, built and tested here.
portable: deps
	cmake -S . -B $(PORTABLE_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSKAFOS_PORTABLE=ON
	cmake --build $(PORTABLE_BUILD) -j $(JOBS)

# A short libFuzzer run over the zip reader and extractor, the whole suite, the suite
# again under AddressSanitizer + UndefinedBehaviorSanitizer, the threaded tests under
# ThreadSanitizer, then the suite on the portable build.
test: build asan portable
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)
	cd $(BUILD) && ctest $(CTEST_ARGS) -j 2
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS) -j 2 -LE no-sanitize
	$(MAKE) --no-print-directory tsan
	$(MAKE) --no-print-directory test-portable-suite

# The portable build's suite, less what does not depend on the build: the emulator's own
# tests (Node), luacheck (the Lua sources) and the rock (built from the sources by
# LuaRocks, not from this build directory).
PORTABLE_SKIP = ^(emulator|luacheck|install/rock)$$
test-portable-suite:
	cd $(PORTABLE_BUILD) && ctest $(CTEST_ARGS) -j 2 -E '$(PORTABLE_SKIP)'

test-portable: portable
	$(MAKE) --no-print-directory test-portable-suite

# 64-bit ARM Linux: cross-built, then the C tests and a publish/fetch round trip against
# the emulator (tests/cross/roundtrip.sh) run under qemu-user.
ARM64_CMAKE = -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo
test-arm64: deps-arm64
	cmake -S . -B $(ARM64_BUILD) $(ARM64_CMAKE)
	cmake --build $(ARM64_BUILD) -j $(JOBS)
	cd $(ARM64_BUILD) && ctest $(CTEST_ARGS) -j 2 -R '^(c|cross)/'

# zcrc32 and the zip module against zlib in the same run, under arm64 emulation
# (tests/bench/ratio/zratio.c), written into tests/bench/RESULTS.md.
BENCH_MIB ?= 8
bench-arm64: deps-arm64
	cmake -S . -B $(ARM64_BUILD) $(ARM64_CMAKE)
	cmake --build $(ARM64_BUILD) -j $(JOBS) --target zratio
	sh tests/bench/ratio/run-arm64.sh $(ARM64_BUILD) $(BENCH_MIB)

FUZZ_SECONDS ?= 20
fuzz: deps
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

# The release build's suite only, for a quick edit-test loop.
test-fast: build
	cd $(BUILD) && ctest $(CTEST_ARGS) -j 2

demo: build
	sh tests/demo/demo.sh $(BUILD)/skafos

bench: build
	sh tests/bench/run.sh $(BUILD)/skafos

# Only the peak-memory rows of `make bench` (about ten minutes).
bench-memory: build
	sh tests/bench/memory/run.sh $(BUILD)/skafos

install: build
	cmake --install $(BUILD)

# The Debian package, from a build configured for /usr (Debian's library and Lua module
# directories): $(DEB_BUILD)/skafos_<version>_<arch>.deb, for `sudo dpkg -i`.
deb: deps
	cmake -S . -B $(DEB_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
	  -DBUILD_TESTING=OFF
	cmake --build $(DEB_BUILD) -j $(JOBS)
	cd $(DEB_BUILD) && cpack -G DEB

# The Lua module as a rock in the user's tree (~/.luarocks): `luarocks make` of the
# rockspec; ROCK_TREE=DIR installs into DIR instead.
rock: deps
	luarocks --lua-version 5.4 make $(if $(ROCK_TREE),--tree $(ROCK_TREE),--local)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(PORTABLE_BUILD) $(ARM64_BUILD) $(DEB_BUILD) \
	  build.luarocks
