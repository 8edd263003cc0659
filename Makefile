# jobq — the two commands of the README.
#   make run    install missing Debian packages, build, start jobqd on ./data/jobq.db at 127.0.0.1:8080
#   make test   install missing packages, build with ASan+UBSan, run every test through CTest
JOBS ?= 2

.PHONY: run build test deps clean bench test-long
deps:
	@scripts/deps.sh

build: deps
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build -j$(JOBS)

run: build
	mkdir -p data
	./build/jobqd --db data/jobq.db --host 127.0.0.1 --port 8080

# test also builds the Release tree, so warnings that only -O2 reports (format truncation)
# can never break `make run` unnoticed
test: build
	cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DJOBQ_SANITIZE=ON -DJOBQ_TESTING=ON >/dev/null
	cmake --build build-test -j$(JOBS)
	cd build-test && ctest --output-on-failure -j$(JOBS)

# make test-long: the long tier of shared/RELIABILITY.md (tests/reliability with full counts,
# 60 s of libFuzzer per target); see scripts/test-long.sh.
test-long: deps
	scripts/test-long.sh

# make bench: W1a/W1b/W2/W3 (docs: scripts/bench.sh) on fresh jobqd's, Release build in build-bench/;
# QUICK=1 for a smoke run (1 rep, 10k jobs), SEED=1 to add bench_latency.
bench: deps
	scripts/bench.sh

clean:
	rm -rf build build-test
