# husk: the two commands a newcomer types are `make demo` and `make test`.
# Every target installs what it needs (Debian packages, checked with dpkg -s).

SHELL := /bin/bash
CARGO ?= cargo
HUSK := $(CURDIR)/target/release/husk
DEB_PKGS := busybox-static libseccomp-dev pkg-config procps util-linux

.PHONY: all deps release build demo test unit lint clean

all: release

## deps: install the Debian packages husk builds and tests with (idempotent)
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; }; \
	fi

## release: build husk optimised (target/release/husk)
release: deps
	$(CARGO) build --release --locked

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

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

## test: lint, unit and integration tests (as root: they run real containers),
## then the runtime-tools conformance suite, the pure cgroup v2 guest and
## containerd, podman and Docker driving husk
test: deps lint
	$(CARGO) test --locked -- --test-threads=4
	$(MAKE) conformance
	$(MAKE) test-cgroupv2
	$(MAKE) test-managers

clean:
	$(CARGO) clean
	rm -rf bundles/busybox/rootfs bundles/busybox/config.json build

-include $(wildcard mk/*.mk)
