# cgroup v2 test bed: a QEMU guest with a pure cgroup2 hierarchy in which
# husk runs real containers.  See integration/cgroupv2/README.md.  Included
# by the top Makefile, which defines "release" (builds the husk binary).

CGROUPV2_DIR := $(CURDIR)/integration/cgroupv2
CGROUPV2_BUILD := $(CURDIR)/build/cgroupv2
CGROUPV2_HUSK ?= $(HUSK)

.PHONY: test-cgroupv2 cgroupv2-guest

# Build the guest (cached), boot it, run every scenario of scenarios.sh (or
# only some: make test-cgroupv2 CGROUPV2_SCENARIOS="limits freeze"); fails
# when a scenario that expected.tsv expects to pass does not.
test-cgroupv2: release cgroupv2-guest
	$(CGROUPV2_DIR)/run.sh $(CGROUPV2_HUSK) $(CGROUPV2_SCENARIOS)

cgroupv2-guest:
	$(CGROUPV2_DIR)/build-guest.sh $(CGROUPV2_BUILD)
