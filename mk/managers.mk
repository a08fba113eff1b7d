# Real container managers (containerd, podman, Docker) drive husk.
# See integration/managers/README.md.  Included by the top Makefile, which
# defines "release" (builds $(HUSK)).
#   make test-managers                      all managers, husk
#   make test-managers RUNTIME=runc         the same scenarios with runc
#   make test-managers MANAGERS=containerd  one manager

MANAGERS_DIR := $(CURDIR)/integration/managers
RUNTIME ?= husk
MANAGERS ?=

.PHONY: test-managers

test-managers: $(if $(filter husk,$(RUNTIME)),release)
	$(MANAGERS_DIR)/run.sh --runtime $(RUNTIME) $(MANAGERS)
