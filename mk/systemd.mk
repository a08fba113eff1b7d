# systemd test bed: a QEMU guest with systemd as PID 1 on pure cgroup v2, in
# which the --systemd-cgroup scenarios run.  See integration/systemd/README.md.
# Included by the top Makefile, which defines "release" (builds $(HUSK)).
#   make test-systemd                        husk (expected.tsv: husk's lines)
#   make test-systemd RUNTIME=runc           the same scenarios with Debian's runc
#   make test-systemd SYSTEMD_SCENARIOS="direct update"

SYSTEMD_DIR := $(CURDIR)/integration/systemd
SYSTEMD_BUILD := $(CURDIR)/build/systemd
RUNTIME ?= husk
SYSTEMD_SCENARIOS ?=

.PHONY: test-systemd systemd-guest systemd-runc

# husk needs the release binary; runc needs Debian's runc package
test-systemd: $(if $(filter runc,$(RUNTIME)),systemd-runc,$(if $(filter husk,$(RUNTIME)),release)) systemd-guest
	$(SYSTEMD_DIR)/run.sh --runtime $(RUNTIME) $(SYSTEMD_SCENARIOS)

# Build the guest once (kernel, vmlinux, initramfs; cached in build/systemd)
systemd-guest:
	$(SYSTEMD_DIR)/build-guest.sh $(SYSTEMD_BUILD)

systemd-runc:
	@dpkg -s runc >/dev/null 2>&1 || { echo "installing runc"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null; }; }
