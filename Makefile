# husk: the two commands a newcomer types are `make demo` and `make test`.
# Every target installs what it needs (Debian packages, checked with dpkg -s).

SHELL := /bin/bash
CARGO ?= cargo
# The release binary is static (glibc and libseccomp linked in): no dynamic
# loader, no shared libraries to map and relocate at each of the several
# processes a container lifecycle starts. Built for the host triple given
# explicitly, so the static flag does not reach build scripts and proc macros.
TRIPLE := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
HUSK := $(TARGET_DIR)/$(TRIPLE)/release/husk
export HUSK
# Link order of the functions a lifecycle runs (tools/order/README.md).
ORDER_FILE := $(CURDIR)/tools/order/husk.order
comma := ,
RELEASE_RUSTFLAGS := -C target-feature=+crt-static $(if $(wildcard $(ORDER_FILE)),\
  -C link-arg=-Wl$(comma)--symbol-ordering-file=$(ORDER_FILE) -C link-arg=-Wl$(comma)--no-warn-symbol-ordering)
RELEASE_ENV := RUSTFLAGS="$(RELEASE_RUSTFLAGS)" LIBSECCOMP_LINK_TYPE=static \
  LIBSECCOMP_LIB_PATH="$$(pkg-config --variable=libdir libseccomp)"
# gcc and libc6-dev: cargo's linker and the static glibc of the release build.
DEB_PKGS := busybox-static libseccomp-dev pkg-config procps util-linux binutils gcc libc6-dev dbus-daemon
# What the tests could not check on this host, one "what (why)" a line
# (tests/common not_checked, integration/not-checked.sh): make test empties
# it first and prints it as one line last. The environment may name another.
export HUSK_NOT_CHECKED ?= $(TARGET_DIR)/not-checked.txt

.PHONY: all deps release order build demo test test-suites lint clean

all: release

## deps: install the Debian packages husk builds and tests with (idempotent)
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; }; \
	fi

## release: build husk optimised and static (target/<host triple>/release/husk)
release: deps
	@# cargo does not see a changed order file: relink when it is newer
	@if [ -f $(ORDER_FILE) ] && [ -f $(HUSK) ] && [ $(ORDER_FILE) -nt $(HUSK) ]; then touch src/main.rs; fi
	$(RELEASE_ENV) $(CARGO) build --release --locked --target $(TRIPLE)
	@# strip after linking: lld drops local symbols under --strip-all before
	@# it applies the order file, so cargo's strip would undo the ordering
	strip $(HUSK) $(dir $(HUSK))husk-recvtty

## order: record tools/order/husk.order again (root, gdb, runc; ~3 min)
order: deps
	@# (python3: tools/order/trace.py and the bundles' editspec.py)
	@for p in gdb runc binutils python3; do dpkg -s $$p >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p; done
	integration/bench/mkbundle.sh $(CURDIR)/build/bench/bundles
	$(RELEASE_ENV) CARGO_TARGET_DIR=$(CURDIR)/build/order/target $(CARGO) build --release --locked --target $(TRIPLE)
	tools/order/trace.py --binary $(CURDIR)/build/order/target/$(TRIPLE)/release/husk \
	  --bundles $(CURDIR)/build/bench/bundles --out $(ORDER_FILE)
	$(MAKE) release

build: deps
	$(CARGO) build --locked

## bundles/busybox: the sample bundle (rootfs generated from busybox-static)
bundles/busybox/rootfs/bin/busybox: deps integration/mkrootfs.sh
	integration/mkrootfs.sh bundles/busybox/rootfs

bundles/busybox/config.json: release bundles/busybox/demo.sh
	rm -f $@
	$(HUSK) spec -b bundles/busybox --no-terminal --hostname husk-demo --args /bin/sh /demo.sh

## demo: run a container that shows what it sees from inside
demo: release bundles/busybox/rootfs/bin/busybox bundles/busybox/config.json
	cp bundles/busybox/demo.sh bundles/busybox/rootfs/demo.sh
	@echo "== on the host: hostname $$(hostname), pid $$$$, uid $$(id -u), $$(ls /sys/class/net | wc -l) network interfaces"
	@echo "== husk run -b bundles/busybox demo"
	$(HUSK) --root /run/husk-demo run -b bundles/busybox demo

## lint: formatting and clippy, warnings are errors (deps: libseccomp's
## build script needs pkg-config and libseccomp-dev)
lint: deps
	@# rustfmt and clippy are rustup components: add them where missing
	@if command -v rustup >/dev/null; then for c in rustfmt clippy; do \
	  rustup component list --installed 2>/dev/null | grep -q "^$$c" || rustup component add $$c; done; fi
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

## test: lint, unit and integration tests (as root: they run real containers),
## then make install/uninstall into a temporary tree (test-install), the
## runtime-tools conformance suite, the pure cgroup v2 guest (and
## checkpoint/restore with CRIU in it, next to runc), the systemd
## guest (--systemd-cgroup under systemd as PID 1 on pure v2 and on the
## hybrid layout, then Docker, podman, containerd and its CRI plugin with
## their systemd driver there) and containerd, podman, Docker and the CRI
## plugin driving husk on this host; last, one line saying what
## could not be checked on this host and why (also when a step failed)
test: deps lint
	@integration/not-checked.sh reset
	@$(MAKE) --no-print-directory test-suites; status=$$?; integration/not-checked.sh summary; exit $$status

test-suites:
	$(CARGO) test --locked -- --test-threads=4
	$(MAKE) test-install
	$(MAKE) test-faults
	$(MAKE) conformance
	$(MAKE) test-cgroupv2
	$(MAKE) test-checkpoint
	$(MAKE) test-systemd RUNTIME=husk
	$(MAKE) test-systemd-hybrid RUNTIME=husk
	$(MAKE) test-systemd-managers RUNTIME=husk
	$(MAKE) test-managers

clean:
	$(CARGO) clean
	rm -rf bundles/busybox/rootfs bundles/busybox/config.json build

-include $(wildcard mk/*.mk)
