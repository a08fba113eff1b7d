# Checkpoint/restore with CRIU, tested in the cgroup v2 guest (CRIU does not
# work on this host's kernel). See integration/checkpoint/run.sh.
# Included by the top Makefile, which defines "release".

.PHONY: test-checkpoint

## test-checkpoint: husk checkpoint/restore in the cgroup v2 guest, timed
## next to runc (make test-checkpoint CHECKPOINT_SCENARIOS="counter")
test-checkpoint: release
	$(CURDIR)/integration/checkpoint/run.sh $(HUSK) $(CHECKPOINT_SCENARIOS)
