#!/usr/bin/env bash
# make test-install: `make install` into a temporary DESTDIR, for PREFIX=/usr
# (a package's tree) and PREFIX=/usr/local (the default), with the husk
# binary given (nothing is built here); then checks every file, its mode,
# that man, bash, zsh and fish read it from where it was put, and that
# `make uninstall` leaves no file behind. The temporary tree is removed on
# any exit.
#
#   integration/install/check.sh /path/to/husk      (root not needed)
set -euo pipefail

husk=${1:?usage: check.sh HUSK_BINARY}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
make=${MAKE:-make}
start=$SECONDS

# man-db (man, manpath; groff-base renders), and the two shells whose
# completion directories are checked against what they really read.
missing=""
for p in man-db zsh fish; do dpkg -s $p >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null 2>&1 ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null; }
fi

tmp=$(mktemp -d /tmp/husk-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

mk() { "$make" --no-print-directory -C "$repo" "$@" HUSK="$husk" >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log" >&2; return 1; }; }

check_prefix() {
	local prefix=$1 d=$tmp/root$2 zshdir
	if [ "$prefix" = /usr ]; then zshdir=share/zsh/vendor-completions; else zshdir=share/zsh/site-functions; fi
	local -A want=(
		[bin/husk]=755
		[share/man/man8/husk.8.gz]=644
		[share/bash-completion/completions/husk]=644
		[$zshdir/_husk]=644
		[share/fish/vendor_completions.d/husk.fish]=644
	)
	echo "== make install DESTDIR=$d PREFIX=$prefix"
	mk install DESTDIR="$d" PREFIX="$prefix" || { fail "make install PREFIX=$prefix"; return; }
	local f
	for f in "${!want[@]}"; do
		local p=$d$prefix/$f
		if [ -f "$p" ] && [ ! -L "$p" ] && [ "$(stat -c %a "$p")" = "${want[$f]}" ]; then
			ok "$prefix/$f mode ${want[$f]}"
		else
			fail "$prefix/$f: $(stat -c '%F %a' "$p" 2>&1), want a regular file mode ${want[$f]}"
		fi
	done
	local n
	n=$(find "$d" -type f -o -type l | wc -l)
	[ "$n" = 5 ] || fail "install put $n files, want 5: $(find "$d" -type f -o -type l)"

	# idempotent: a second install succeeds and changes no byte
	local before after
	before=$(cd "$d" && find . -type f -exec sha256sum {} + | sort)
	mk install DESTDIR="$d" PREFIX="$prefix" || fail "second make install PREFIX=$prefix"
	after=$(cd "$d" && find . -type f -exec sha256sum {} + | sort)
	[ "$before" = "$after" ] && ok "second install: same files, same bytes" || fail "second install changed files"

	# the binary: the one given, and it runs
	local bin=$d$prefix/bin/husk
	cmp -s "$husk" "$bin" || fail "$bin differs from $husk"
	grep -q '^husk version ' <<<"$("$bin" --version)" && ok "installed husk --version" || fail "installed husk --version"

	# the man page: section 8, renders without a warning, found by man in
	# that tree (and, for /usr/local, in the tree man-db searches by default)
	local page=$d$prefix/share/man/man8/husk.8.gz
	grep -q '^\.TH husk 8 ' <<<"$(zcat "$page")" && ok "man page section 8" || fail "man page is not .TH husk 8"
	local out err
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>"$tmp/man.err") || fail "man -l $page"
	err=$(cat "$tmp/man.err")
	if [ -z "$err" ] && grep -q 'runc-compatible' <<<"$out" && grep -q 'SUBCOMMANDS' <<<"$out"; then
		ok "man --warnings -l renders it, no warning"
	else
		fail "man -l: warnings: ${err:-none}"
	fi
	[ "$(man -M "$d$prefix/share/man" -w husk 2>&1)" = "$page" ] && ok "man -M ... -w husk finds it" ||
		fail "man -M $d$prefix/share/man -w husk: $(man -M "$d$prefix/share/man" -w husk 2>&1)"
	if [ "$prefix" = /usr/local ]; then
		grep -qx /usr/local/share/man <<<"$(manpath 2>/dev/null | tr : '\n')" &&
			ok "/usr/local/share/man is in man-db's search path" || fail "/usr/local/share/man not in manpath"
	fi

	# bash: the file registers the completion, and it completes a subcommand;
	# bash-completion looks in $XDG_DATA_DIRS (default /usr/local/share:/usr/share)
	local bashf=$d$prefix/share/bash-completion/completions/husk
	out=$(bash --norc --noprofile -c 'source "$1" && complete -p husk && COMP_WORDS=(husk cre) COMP_CWORD=1 COMP_LINE="husk cre" COMP_POINT=8 && _husk husk cre husk && echo "${COMPREPLY[*]}"' _ "$bashf" 2>&1) || true
	if grep -q -- '-F _husk husk$' <<<"$out" && grep -qw create <<<"$out"; then
		ok "bash: complete -p husk, and 'husk cre<TAB>' gives create"
	else
		fail "bash completion: $out"
	fi

	# zsh: the directory is in this zsh's own fpath (no DESTDIR), and compinit
	# picks _husk from it
	# (grep -q reads a variable, not a pipe: with pipefail, a writer killed by
	# SIGPIPE when grep -q stops early would fail the check)
	grep -qx "$prefix/$zshdir" <<<"$(zsh -fc 'print -l $fpath')" && ok "zsh reads $prefix/$zshdir" ||
		fail "$prefix/$zshdir is not in zsh's fpath: $(zsh -fc 'print $fpath')"
	out=$(cd "$tmp" && zsh -fc 'fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -D; print -r -- "${_comps[husk]}"' _ "$d$prefix/$zshdir" 2>&1) || true
	[ "$out" = _husk ] && ok "zsh: compinit registers _husk for husk" || fail "zsh compinit: $out"

	# fish: reads $prefix/share/fish/vendor_completions.d (for /usr/local when
	# XDG_DATA_DIRS names /usr/local/share, as systemd sessions set it), and
	# autoloads husk.fish there when husk is a command in PATH. HOME and the
	# XDG homes in $tmp: no user's fish configuration, nothing written there.
	local fishdir=$prefix/share/fish/vendor_completions.d
	local -a fishenv=(HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" XDG_DATA_HOME="$tmp/home/.local/share")
	grep -qx "$fishdir" <<<"$(env "${fishenv[@]}" XDG_DATA_DIRS=/usr/local/share:/usr/share fish -c 'string join \n $fish_complete_path')" &&
		ok "fish reads $fishdir" || fail "$fishdir is not in fish_complete_path"
	out=$(cd "$tmp" && env "${fishenv[@]}" PATH="$d$prefix/bin:$PATH" fish -c 'set -p fish_complete_path $argv[1]; complete -C "husk cre"' "$d$fishdir" 2>&1) || true
	grep -q '^create' <<<"$out" && ok "fish: 'husk cre<TAB>' gives create" || fail "fish completion: $out"

	# uninstall: no file left (twice: the second has nothing to do, and succeeds)
	echo "== make uninstall DESTDIR=$d PREFIX=$prefix"
	mk uninstall DESTDIR="$d" PREFIX="$prefix" || fail "make uninstall PREFIX=$prefix"
	mk uninstall DESTDIR="$d" PREFIX="$prefix" || fail "second make uninstall PREFIX=$prefix"
	local left
	left=$(find "$d" ! -type d)
	[ -z "$left" ] && ok "uninstall left no file" || fail "left after uninstall: $left"
}

check_prefix /usr usr
check_prefix /usr/local local

echo "install check: $fails failure(s), $((SECONDS - start)) s"
[ "$fails" = 0 ]
