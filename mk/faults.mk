# make test-faults: every failure on husk's create path leaves nothing
# behind and says what failed (issue 21; integration/faults/README.md).
# Every injection case (~5 min on 2 CPUs); FAULTS_EVERY=k samples,
# FAULTS_FULL=1 adds kill points and race loops. Included by the top
# Makefile, which defines "release" and HUSK; run by make test.

.PHONY: test-faults

## test-faults: injected syscall failures, kill -9 at any moment, bad state
## on disk, races on one id, 200 containers (root; strace, python3)
test-faults: release
	@for p in strace python3; do dpkg -s $$p >/dev/null 2>&1 || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p; }; done
	HUSK=$(HUSK) python3 integration/faults/faults.py
