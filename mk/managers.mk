# Real container managers (containerd, podman, Docker, containerd's CRI
# plugin) drive husk.  See integration/managers/README.md.  Included by the
# top Makefile, which defines "release" (builds $(HUSK)).
#   make test-managers                      all managers, husk
#   make test-managers RUNTIME=runc         the same scenarios with runc
#   make test-managers MANAGERS=containerd  one manager (containerd podman docker cri)

MANAGERS_DIR := $(CURDIR)/integration/managers
RUNTIME ?= husk
MANAGERS ?=
CRI_CLIENT := $(TARGET_DIR)/cri/release/cri-client
export CRI_CLIENT

.PHONY: test-managers cri-client

test-managers: $(if $(filter husk,$(RUNTIME)),release) cri-client
	$(MANAGERS_DIR)/run.sh --runtime $(RUNTIME) $(MANAGERS)

## cri-client: the kubelet-like CRI client of the cri scenarios
## (integration/cri, its own crate; protoc builds the CRI protos)
cri-client:
	@dpkg -s protobuf-compiler >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler; }
	CARGO_TARGET_DIR=$(TARGET_DIR)/cri $(CARGO) build --release --locked --manifest-path integration/cri/Cargo.toml
