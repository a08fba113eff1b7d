# Conformance: the opencontainers runtime-tools validation suite.
# See integration/conformance/README.md.  Included by the top Makefile, which
# defines "release" (builds $(HUSK)).

CONFORMANCE_DIR := $(CURDIR)/integration/conformance
CONFORMANCE_RUNTIME ?= $(HUSK)

.PHONY: conformance conformance-build conformance-peers

# Build the suite (cached) and run all 58 tests against husk; fails when a
# test that expected.tsv expects to pass does not.  Run one or a few tests
# with: make conformance CONFORMANCE_TESTS="create start"
conformance: release
	$(CONFORMANCE_DIR)/build.sh
	$(CONFORMANCE_DIR)/run.sh $(CONFORMANCE_RUNTIME) $(CONFORMANCE_TESTS)

conformance-build:
	$(CONFORMANCE_DIR)/build.sh

# Re-measure the reference runtimes (PEERS.md); results go to
# build/conformance/peers/{runc,crun}.  Never fails on test results.
conformance-peers: conformance-build
	@for p in runc crun; do dpkg -s $$p >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p; done
	-CONFORMANCE_EXPECTED=/dev/null CONFORMANCE_RESULTS_DIR=$(CURDIR)/build/conformance/peers/runc \
		$(CONFORMANCE_DIR)/run.sh $$(command -v runc)
	-CONFORMANCE_EXPECTED=/dev/null CONFORMANCE_RESULTS_DIR=$(CURDIR)/build/conformance/peers/crun \
		CONFORMANCE_HIDE_CGROUP2=1 $(CONFORMANCE_DIR)/run.sh $$(command -v crun)
