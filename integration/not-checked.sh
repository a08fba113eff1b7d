#!/usr/bin/env bash
# What the tests could not check on this host, and why: one line "WHAT
# (WHY)" per item in $HUSK_NOT_CHECKED (make test sets it to
# target/not-checked.txt, the default here too). The Rust tests write it
# with tests/common's not_checked, the shell suites with this file:
#
#   source integration/not-checked.sh; not_checked WHAT WHY
#   integration/not-checked.sh add WHAT WHY
#   integration/not-checked.sh reset      # empty the file (make test, first)
#   integration/not-checked.sh summary    # the one line (make test, last):
#     not checked on this host: WHAT (WHY); WHAT (WHY)   (or: nothing)
#
# Each line is appended in one write to a file opened O_APPEND, so suites
# and test processes running at once do not mix their lines.

_not_checked_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

not_checked_file() { echo "${HUSK_NOT_CHECKED:-$_not_checked_repo/target/not-checked.txt}"; }

# not_checked WHAT WHY
not_checked() {
	local f line
	f=$(not_checked_file)
	line=$(printf '%s (%s)' "$1" "$2" | tr '\n' ' ')
	mkdir -p "$(dirname "$f")"
	printf '%s\n' "$line" >>"$f"
	printf 'not checked here: %s\n' "$line" >&2
}

# The one summary line; each item once, sorted (tests running in parallel
# record in no fixed order).
not_checked_summary() {
	local f
	f=$(not_checked_file)
	if [ -s "$f" ]; then
		LC_ALL=C sort -u "$f" | awk 'NF { s = s (s == "" ? "" : "; ") $0 }
			END { print "not checked on this host: " (s == "" ? "nothing" : s) }'
	else
		echo "not checked on this host: nothing"
	fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	case "${1:-}" in
	add) [ $# -eq 3 ] || { echo "usage: $0 add WHAT WHY" >&2; exit 2; }; not_checked "$2" "$3" ;;
	reset) f=$(not_checked_file); mkdir -p "$(dirname "$f")"; : >"$f" ;;
	summary) not_checked_summary ;;
	*) echo "usage: $0 add WHAT WHY | reset | summary" >&2; exit 2 ;;
	esac
fi
