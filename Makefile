# Thin front door over CMake. `make test` and `make demo` install what is missing
# (apt-get as root; otherwise they print the command to run), build, and go.
BUILD      ?= build
ASAN_BUILD ?= build-asan
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

.PHONY: all deps build asan test test-fast fuzz demo bench install deb rock clean

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

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSKAFOS_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# A short libFuzzer run over the zip reader and extractor, the whole suite, then the
# suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
test: build asan
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)
	cd $(BUILD) && ctest $(CTEST_ARGS) -j 2
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS) -j 2 -LE no-sanitize

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
	rm -rf $(BUILD) $(ASAN_BUILD) $(DEB_BUILD) build.luarocks
