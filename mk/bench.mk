# bench: husk side by side with runc and crun (integration/bench/README.md).
# Needs root. Knobs: BENCH_RUNTIMES (default "husk runc crun"; a word may be
# name=/path/to/binary), BENCH_ROUNDS (100), BENCH_WARMUP (5),
# BENCH_BATCH_REPEATS (3), BENCH_SUBJECT (husk). Results: results/bench/.
BENCH_RUNTIMES ?= husk runc crun
BENCH_ROUNDS ?= 100

.PHONY: bench
bench: release
	BENCH_RUNTIMES="$(BENCH_RUNTIMES)" BENCH_ROUNDS="$(BENCH_ROUNDS)" BENCH_VIA="make bench" \
	  integration/bench/bench.sh --husk $(HUSK)
