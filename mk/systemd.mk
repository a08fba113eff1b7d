# systemd test bed: a QEMU guest with systemd as PID 1 on pure cgroup v2, in
# which the --systemd-cgroup scenarios run.  See integration/systemd/README.md.
# Included by the top Makefile, which defines "release" (builds $(HUSK)).
#   make test-systemd                        husk, the driver's scenarios (expected.tsv: husk's lines)
#   make test-systemd RUNTIME=runc           the same scenarios with Debian's runc
#   make test-systemd SYSTEMD_SCENARIOS="direct update"
#   make test-systemd-managers [RUNTIME=runc]  Docker, podman, containerd with their
#                                            default systemd driver, in a boot of their own
#   make test-systemd-hybrid [RUNTIME=runc]    the driver on systemd's hybrid layout
#                                            (unified_cgroup_hierarchy=0), a boot of its own

SYSTEMD_DIR := $(CURDIR)/integration/systemd
SYSTEMD_BUILD := $(CURDIR)/build/systemd
RUNTIME ?= husk
# scenario names, or the groups "driver" (the runtime alone) and "managers"
SYSTEMD_SCENARIOS ?= driver

.PHONY: test-systemd test-systemd-managers test-systemd-hybrid systemd-guest systemd-runc

# husk needs the release binary; runc needs Debian's runc package
SYSTEMD_RUNTIME_DEP = $(if $(filter runc,$(RUNTIME)),systemd-runc,$(if $(filter husk,$(RUNTIME)),release))

test-systemd: $(SYSTEMD_RUNTIME_DEP) systemd-guest
	$(SYSTEMD_DIR)/run.sh --runtime $(RUNTIME) $(SYSTEMD_SCENARIOS)

# a boot of its own: about 3-5 min under TCG (dockerd, podman and
# containerd start in the guest); run.sh installs the managers' packages and
# builds their image (integration/managers/mkimage.sh) on the host
test-systemd-managers: $(SYSTEMD_RUNTIME_DEP) systemd-guest cri-client
	$(SYSTEMD_DIR)/run.sh --runtime $(RUNTIME) managers

# v1 + unified, as this machine (about 1.5 min under TCG)
test-systemd-hybrid: $(SYSTEMD_RUNTIME_DEP) systemd-guest
	$(SYSTEMD_DIR)/run.sh --runtime $(RUNTIME) hybrid

# Build the guest once (kernel, vmlinux, initramfs; cached in build/systemd)
systemd-guest:
	$(SYSTEMD_DIR)/build-guest.sh $(SYSTEMD_BUILD)

systemd-runc:
	@dpkg -s runc >/dev/null 2>&1 || { echo "installing runc"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null; }; }

## bench-systemd: `run` with the systemd driver in the systemd guest, the
## runtime under test against crun and runc in the same boot (a benchmark,
## not in make test; README "Benchmark" quotes it; TIMING_RUNS=N rounds, 10)
.PHONY: bench-systemd
bench-systemd: $(SYSTEMD_RUNTIME_DEP) systemd-guest
	@for p in crun runc; do dpkg -s $$p >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p >/dev/null; done
	SYSTEMD_VERBOSE=1 $(SYSTEMD_DIR)/run.sh --runtime $(RUNTIME) timing
