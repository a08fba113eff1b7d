#!/usr/bin/env bash
# Run the runtime-tools validation suite (built by build.sh) against an OCI
# runtime and compare the outcome with expected.tsv.
#
#   run.sh RUNTIME_PATH [TEST...]
#
# Each test runs in its own private mount namespace, with its own runtime
# state directory (the runtime is called through a wrapper that adds
# "--root DIR"), its own TMPDIR (where the test makes its bundles) and a
# timeout.  Tests that use the fixed cgroup paths of the suite run one at a
# time; the others run CONFORMANCE_JOBS at a time.
#
# Writes <results>/results.tsv, <results>/results.md and, per test,
# <results>/logs/TEST.{tap,stderr,argv}.  Exits non-zero when a test that
# expected.tsv expects to pass does not pass, or when a test expected to
# fail because this host lacks something does not fail with the error
# expected.tsv gives for husk.  A test expected to fail for a host cause is
# recorded as not checked on this host (integration/not-checked.sh); one
# whose host cause has a probe (host_has) is expected to pass where the
# host has what it needs.
#
# Environment:
#   CONFORMANCE_OUT          build directory (default: <repo>/build/conformance)
#   CONFORMANCE_RESULTS_DIR  where results go (default: $CONFORMANCE_OUT)
#   CONFORMANCE_EXPECTED     expected results (default: expected.tsv beside this script)
#   CONFORMANCE_TIMEOUT      seconds per test (default: 60)
#   CONFORMANCE_JOBS         tests run in parallel (default: 2)
#   CONFORMANCE_HIDE_CGROUP2 1: unmount /sys/fs/cgroup/unified inside each
#                            test's mount namespace (crun refuses hybrid hosts)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${CONFORMANCE_OUT:-$REPO/build/conformance}"
RESULTS="${CONFORMANCE_RESULTS_DIR:-$OUT}"
EXPECTED="${CONFORMANCE_EXPECTED:-$HERE/expected.tsv}"
TIMEOUT="${CONFORMANCE_TIMEOUT:-60}"
JOBS="${CONFORMANCE_JOBS:-2}"
HIDE_CGROUP2="${CONFORMANCE_HIDE_CGROUP2:-0}"
BIN="$OUT/bin"
LOGS="$RESULTS/logs"
WORK=""

# shellcheck source=../not-checked.sh
source "$HERE/../not-checked.sh"

log() { printf '[conformance] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
	exit 2
}

# --- cleanup -----------------------------------------------------------------

# Kill every process left by the test that ran in directory $1: the test
# binary and runtime invocations carry HUSK_CONFORMANCE_DIR=$1 in their
# environment, container processes have their root (or cwd) inside $1.
sweep_processes() {
	local d="$1" p link found
	for _ in 1 2 3; do
		found=0
		for p in /proc/[0-9]*; do
			p="${p#/proc/}"
			[ "$p" = "$$" ] && continue
			if grep -qzxF "HUSK_CONFORMANCE_DIR=$d" "/proc/$p/environ" 2>/dev/null; then
				kill -KILL "$p" 2>/dev/null && found=1
				continue
			fi
			for link in root cwd; do
				case "$(readlink "/proc/$p/$link" 2>/dev/null)" in
				"$d"/*) kill -KILL "$p" 2>/dev/null && found=1 ;;
				esac
			done
		done
		[ "$found" = 0 ] && return 0
		sleep 0.5
	done
}

# Remove what the test that ran in $1 may have left: containers still known
# to the runtime, processes, and cgroups named after its containers.
cleanup_test() {
	local d="$1" id dir
	[ -d "$d" ] || return 0
	if [ -d "$d/root" ]; then
		for dir in "$d"/root/*/; do
			[ -d "$dir" ] || continue
			id="$(basename "$dir")"
			timeout 20 "$RUNTIME_PATH" --root "$d/root" delete --force "$id" >/dev/null 2>&1 || true
		done
	fi
	sweep_processes "$d"
	if [ -f "$d/argv" ]; then
		# Container ids are the last argument of "create".
		awk '$1 == "create" { print $NF }' "$d/argv" | sort -u | while read -r id; do
			[ -n "$id" ] || continue
			find /sys/fs/cgroup -mindepth 2 -maxdepth 6 -type d -name "$id" 2>/dev/null |
				while read -r dir; do
					find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
				done || true
		done || true
	fi
	return 0
}

# The suite's fixed cgroup paths (cgroups.AbsCgroupPath, RelCgroupPath).
cleanup_test_cgroups() {
	local dir
	find /sys/fs/cgroup -mindepth 2 -maxdepth 8 -type d \
		\( -path '*/cgrouptest' -o -path '*/testdir' \) -prune -print 2>/dev/null |
		while read -r dir; do
			find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
			if [ -d "$dir" ]; then log "warning: could not remove cgroup $dir"; fi
		done || true
	return 0
}

on_exit() {
	local rc=$? pid d
	trap - EXIT INT TERM
	set +e   # clean up as much as possible
	for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		for d in "$WORK"/*/; do
			# Tests that finished were cleaned up already.
			[ -f "$d/summary" ] || cleanup_test "${d%/}"
		done
		wait 2>/dev/null || true
		cleanup_test_cgroups
		if grep -qF "$WORK" /proc/self/mountinfo; then
			log "warning: mounts left under $WORK; unmounting"
			grep -F "$WORK" /proc/self/mountinfo | awk '{ print $5 }' | sort -r |
				while read -r m; do umount -l "$m" 2>/dev/null || true; done
		fi
		rm -rf "$WORK"
	fi
	exit "$rc"
}

# --- running one test ------------------------------------------------------

# Script run inside the test's private mount namespace (expanded there).
# shellcheck disable=SC2016
INNER='
set -e
if [ "$HIDE_CGROUP2" = 1 ] && mountpoint -q /sys/fs/cgroup/unified; then
	umount -l /sys/fs/cgroup/unified
fi
cd "$BIN"
exec "$BIN/tests/$1"
'

run_one() {
	local t="$1" d="$WORK/$1" lock=() start rc
	mkdir -p "$d/root" "$d/tmp"
	# Like /tmp, the bundles' parents must be searchable by container users
	# (user namespaces, process.user).
	chmod 755 "$d" "$d/tmp"
	# The suite runs "$RUNTIME <command> ...": put "--root" in front.
	cat >"$d/runtime" <<-EOF
		#!/bin/bash
		printf '%q ' "\$@" >>'$d/argv'; echo >>'$d/argv'
		exec '$RUNTIME_PATH' --root '$d/root' "\$@"
	EOF
	chmod +x "$d/runtime"
	case "$t" in
	linux_cgroups_* | delete_resources) lock=(flock "$WORK/cgroup.lock") ;;
	esac

	start=$SECONDS
	rc=0
	HUSK_CONFORMANCE_DIR="$d" RUNTIME="$d/runtime" TMPDIR="$d/tmp" \
		BIN="$BIN" HIDE_CGROUP2="$HIDE_CGROUP2" \
		"${lock[@]}" timeout -k 5 "$TIMEOUT" \
		unshare -m --propagation private bash -c "$INNER" inner "$t" \
		>"$LOGS/$t.tap" 2>"$LOGS/$t.stderr" </dev/null || rc=$?
	echo "$rc $((SECONDS - start))" >"$d/status"
	cleanup_test "$d" || true
	cp "$d/argv" "$LOGS/$t.argv" 2>/dev/null || : >"$LOGS/$t.argv"
	summarize "$t" >"$d/summary"
	local result note
	IFS=$'\t' read -r _ _ _ _ _ _ result note <"$d/summary"
	printf '%-5s %-40s %3ss %s\n' "${result^^}" "$t" "$((SECONDS - start))" "$note" >&2
	rm -rf "$d/root" "$d/tmp"
}

# Print one results.tsv row for test $1 from its TAP output and exit status:
# test pass fail skip exit seconds result note
summarize() {
	local t="$1" rc secs
	read -r rc secs <"$WORK/$t/status"
	# How the suite reports:
	#  - a binary may print several TAP documents ("TAP version 13" .. plan),
	#    e.g. linux_cgroups_cpus; each must have a plan matching its points;
	#  - lifecycle tests (hooks, prestart, poststop, ...) print no test point
	#    at all: "1..0" alone means success, a YAML block with "error:" before
	#    it means failure;
	#  - some *_fail tests print nothing and exit 0 on success;
	#  - only unindented lines count: runtimetest's own TAP output is
	#    embedded in indented YAML blocks.
	awk -v t="$t" -v rc="$rc" -v secs="$secs" -v timeout="$TIMEOUT" '
		function clean(s) { gsub(/[\t| ]+/, " ", s); sub(/^ /, "", s); return substr(s, 1, 140) }
		function problem(s) { bad = bad (bad == "" ? "" : "; ") s }
		function close_doc() {
			if (indoc && !planned) problem("no TAP plan")
			else if (indoc && plan != n) problem("plan 1.." plan " but " n " results")
			if (indoc && n == 0 && orphan) problem("error reported without a test point: " (orphan_error == "" ? "(see log)" : orphan_error))
			indoc = 0; planned = 0; n = 0; orphan = 0; inyaml = 0
		}
		/^TAP version/ { close_doc(); indoc = 1; docs++; next }
		/^  ---$/ { inyaml = 1; if (n == 0) orphan = 1; next }
		/^  \.\.\.$/ { inyaml = 0; next }
		inyaml && n == 0 && orphan_error == "" {
			if (want_error && $0 ~ /[^ ]/) { orphan_error = $0; want_error = 0 }
			else if ($0 ~ /^  error: /) {
				v = $0; sub(/^  error: /, "", v)
				if (v ~ /^[|>]/) want_error = 1; else orphan_error = v
			}
			next
		}
		/^1\.\.[0-9]+/ { if (!indoc) { indoc = 1; docs++ } plan = substr($0, 4) + 0; planned = 1; next }
		/^(not )?ok( |$)/ {
			if (!indoc) { indoc = 1; docs++ }
			n++; points++
			line = $0
			if (line ~ / # *[Ss][Kk][Ii][Pp]/) { skip++; next }
			if (line ~ /^ok/) { pass++; next }
			if (line ~ / # *[Tt][Oo][Dd][Oo]/) { todo++; next }
			fail++
			if (firstfail == "") { sub(/^not ok [0-9]* *-? */, "", line); firstfail = line }
			next
		}
		END {
			close_doc()
			note = ""
			if (rc == 124 || rc == 137) { result = "fail"; note = "timeout after " timeout "s" }
			else if (rc != 0) { result = "fail"; note = "exit status " rc }
			else if (fail > 0) { result = "fail" }
			else if (bad != "") { result = "fail"; note = bad }
			else if (pass == 0 && skip > 0) { result = "skip" }
			else if (points == 0) { result = "pass"; note = (docs ? "no test points, no error (1..0)" : "no output, exit status 0") }
			else { result = "pass" }
			if (firstfail != "") note = (note == "" ? "" : note "; ") "not ok: " firstfail
			printf "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", t, pass, fail, skip, rc, secs, result, clean(note)
		}' "$LOGS/$t.tap"
}

# --- what this host has ----------------------------------------------------

# The mountpoint of the v1 hierarchy of controller $1 (status 1: none).
v1_mount() {
	awk -v c="$1" '{
		for (i = 1; i <= NF && $i != "-"; i++) ;
		if ($(i + 1) != "cgroup") next
		n = split($(i + 3), o, ",")
		for (j = 1; j <= n; j++) if (o[j] == c) { print $5; found = 1; exit }
	} END { exit !found }' /proc/self/mountinfo
}

# host_has PROBE: does this host have what the tests expected.tsv lists
# with cause host:PROBE need?  Found out here, independently of husk.
host_has() {
	local m d ok last bnd want
	case "$1" in
	cfq-weights)
		# blkio.weight and blkio.leaf_weight (CFQ) in a blkio cgroup below
		# the root (BFQ has no leaf weight), and the device 8:0 the tests use
		m=$(v1_mount blkio) || return 1
		[ -e /sys/dev/block/8:0 ] || return 1
		d="$m/husk-conformance-probe-$$"
		mkdir "$d" || return 1
		ok=0
		[ -e "$d/blkio.weight" ] && [ -e "$d/blkio.leaf_weight" ] && ok=1
		rmdir "$d"
		[ "$ok" = 1 ]
		;;
	v1-hugetlb) v1_mount hugetlb >/dev/null ;;
	v1-net_cls-net_prio) v1_mount net_cls >/dev/null && v1_mount net_prio >/dev/null ;;
	apparmor-acme_secure_profile)
		[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] &&
			grep -q '^acme_secure_profile ' /sys/kernel/security/apparmor/profiles 2>/dev/null
		;;
	selinux)
		# SELinux enabled (the test's mount label needs it to mean anything)
		[ -e /sys/fs/selinux/enforce ]
		;;
	all-capabilities)
		# every capability the kernel knows is in our bounding set
		last=$(cat /proc/sys/kernel/cap_last_cap)
		bnd=$(awk '$1 == "CapBnd:" { print $2 }' /proc/self/status)
		want=$(((1 << (last + 1)) - 1))
		[ $((16#$bnd & want)) = "$want" ]
		;;
	*) die "expected.tsv: unknown host probe '$1'" ;;
	esac
}

# MISSING: the probes of expected.tsv this host fails, space-separated.
MISSING=""
find_missing() {
	local probe
	for probe in $(awk -F'\t' '!/^#/ && $3 ~ /^host:/ { print substr($3, 6) }' "$EXPECTED" | sort -u); do
		host_has "$probe" || MISSING="$MISSING $probe"
	done
}

# --- main ------------------------------------------------------------------

main() {
	[ $# -ge 1 ] || usage
	case "$1" in -h | --help) usage ;; esac
	RUNTIME_PATH="$(realpath -e "$1" 2>/dev/null)" || die "runtime not found: $1"
	[ -x "$RUNTIME_PATH" ] || die "runtime not executable: $RUNTIME_PATH"
	shift
	[ "$(id -u)" -eq 0 ] || die "must run as root (mount namespaces, cgroups)"
	if [ ! -x "$BIN/runtimetest" ] || [ ! -d "$BIN/tests" ]; then
		die "suite not built: run integration/conformance/build.sh first"
	fi
	[ -r "$EXPECTED" ] || die "no expected results: $EXPECTED"

	local tests=() t
	if [ $# -gt 0 ]; then
		for t in "$@"; do
			[ -x "$BIN/tests/$t" ] || die "no such test: $t (see $BIN/tests)"
			tests+=("$t")
		done
	else
		for t in "$BIN"/tests/*; do tests+=("$(basename "$t")"); done
	fi

	mkdir -p "$RESULTS"
	rm -rf "$LOGS"
	mkdir -p "$LOGS"
	WORK="$(mktemp -d /tmp/husk-conformance.XXXXXX)"
	chmod 755 "$WORK"
	trap on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	cleanup_test_cgroups

	find_missing
	log "this host lacks:${MISSING:- nothing expected.tsv probes for}"

	log "running ${#tests[@]} tests against $RUNTIME_PATH ($JOBS at a time, ${TIMEOUT}s each$([ "$HIDE_CGROUP2" = 1 ] && echo ", cgroup2 hidden"))"
	local start=$SECONDS running=0
	for t in "${tests[@]}"; do
		if [ "$running" -ge "$JOBS" ]; then
			wait -n || true
			running=$((running - 1))
		fi
		run_one "$t" &
		running=$((running + 1))
	done
	wait || true
	local elapsed=$((SECONDS - start))

	report "$elapsed" "${tests[@]}"
}

# Write results.tsv and results.md, compare with expected.tsv, set the exit
# status.
report() {
	local elapsed="$1" t
	shift
	local tsv="$RESULTS/results.tsv" md="$RESULTS/results.md"
	{
		printf 'test\tpass\tfail\tskip\texit\tseconds\tresult\tnote\n'
		for t in "$@"; do
			if [ -f "$WORK/$t/summary" ]; then
				cat "$WORK/$t/summary"
			else
				printf '%s\t0\t0\t0\t-1\t0\tfail\tdid not run\n' "$t"
			fi
		done
	} >"$tsv"

	local version rc=0 what why
	version="$("$RUNTIME_PATH" --version 2>/dev/null | head -n1 || true)"
	: >"$RESULTS/not-checked.tsv"
	awk -F'\t' -v runtime="$RUNTIME_PATH" -v version="$version" -v elapsed="$elapsed" \
		-v md="$md" -v hide="$HIDE_CGROUP2" -v missing="$MISSING" -v logs="$LOGS" \
		-v notchecked="$RESULTS/not-checked.tsv" '
		BEGIN { n = split(missing, m, " "); for (i = 1; i <= n; i++) lacks[m[i]] = 1 }
		# does the stderr of test t match the extended regular expression re?
		function says(t, re,    line, f, found) {
			f = logs "/" t ".stderr"
			while ((getline line < f) > 0) if (line ~ re) found = 1
			close(f)
			return found
		}
		FILENAME == ARGV[1] {
			if ($0 ~ /^#/ || $1 == "" || $1 == "test") next
			exp_result[$1] = $2; exp_cause[$1] = $3; exp_reason[$1] = $4; exp_error[$1] = $5; nexp++; next
		}
		FNR == 1 { next }                                    # results.tsv header
		{
			t = $1; result = $7; note = $8
			total++
			if (result == "pass") passed++
			expected = (t in exp_result) ? exp_result[t] : "pass"
			if (!(t in exp_result)) unlisted = unlisted " " t
			cause = exp_cause[t]
			# a host cause with a probe the host passes: expected to pass here
			if (cause ~ /^host:/ && !(substr(cause, 6) in lacks)) expected = "pass"
			status = ""
			if (expected == "pass" && result != "pass") { status = "REGRESSION"; regressions = regressions " " t }
			else if (expected != "pass" && result == "pass") { status = "unexpected pass, update expected.tsv"; unexpected = unexpected " " t }
			else if (expected != "pass" && cause ~ /^host/) {
				if (exp_error[t] != "" && !says(t, exp_error[t])) {
					status = "REGRESSION: husk did not refuse with /" exp_error[t] "/"
					regressions = regressions " " t
				} else {
					printf "conformance %s\t%s\n", t, exp_reason[t] > notchecked
				}
			}
			if (expected == "pass") expected_pass++
			why = note
			if (result != "pass" && expected != "pass" && exp_reason[t] != "") why = exp_reason[t] (note == "" ? "" : " (" note ")")
			gsub(/\|/, "\\|", why)
			gsub(/\|/, "\\|", status)
			rows = rows sprintf("| %s | %s | %s | %d/%d/%d | %s | %s |\n", t, result, expected, $2, $3, $4, status, why)
		}
		END {
			print "# Conformance results" > md
			print "" > md
			printf "Runtime: `%s` (%s). Suite: opencontainers runtime-tools validation (Debian %s). ", runtime, version, "0.9.0.109.ge931285-1" > md
			printf "%d of %d tests pass (%d expected); run took %ds%s.\n\n", passed, total, expected_pass, elapsed, (hide == "1" ? ", /sys/fs/cgroup/unified hidden" : "") > md
			print "| test | result | expected | ok/not ok/skip | status | note or reason |" > md
			print "| --- | --- | --- | --- | --- | --- |" > md
			printf "%s", rows > md
			printf "conformance: %d of %d tests pass (%d expected to pass) in %ds\n", passed, total, expected_pass, elapsed
			if (unlisted != "" && nexp > 0) printf "conformance: not in expected.tsv (treated as expected to pass):%s\n", unlisted
			if (unexpected != "") printf "conformance: unexpected pass, update expected.tsv:%s\n", unexpected
			if (regressions != "") { printf "conformance: REGRESSION, not the expected result:%s\n", regressions; exit 1 }
		}' "$EXPECTED" "$tsv" >&2 || rc=1
	while IFS=$'\t' read -r what why; do
		not_checked "$what" "$why"
	done <"$RESULTS/not-checked.tsv"
	log "results: $tsv, $md, logs in $LOGS"
	return "$rc"
}

main "$@"
