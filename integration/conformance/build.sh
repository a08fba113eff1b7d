#!/usr/bin/env bash
# Build the opencontainers runtime-tools validation suite (runtimetest, the
# validation test binaries and a busybox root filesystem) into
# build/conformance/.  Idempotent: installs only missing Debian packages,
# downloads only what is not cached, rebuilds only when an input changed.
#
# Environment:
#   CONFORMANCE_OUT       output directory (default: <repo>/build/conformance)
#   CONFORMANCE_MIRROR    Debian mirror base URL (default: from the apt sources)
#   RUNTIME_TOOLS_SUITE   Debian suite to take the source from (default: trixie)
#   RUNTIME_TOOLS_VERSION Debian source version (default: 0.9.0.109.ge931285-1)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="${CONFORMANCE_OUT:-$REPO/build/conformance}"
SUITE="${RUNTIME_TOOLS_SUITE:-trixie}"
SRCPKG=golang-github-opencontainers-runtime-tools
VERSION="${RUNTIME_TOOLS_VERSION:-0.9.0.109.ge931285-1}"
UPSTREAM_VERSION="${VERSION%-*}"
IMPORT_PATH=github.com/opencontainers/runtime-tools

DL="$OUT/dl"                  # verified downloads (cache)
GOPATH_DIR="$OUT/gopath"      # our GOPATH, followed by /usr/share/gocode
SRC="$GOPATH_DIR/src/$IMPORT_PATH"
BIN="$OUT/bin"                # runtimetest, rootfs tarball, tests/<name>

# Debian packages the build (and run.sh) needs.
PACKAGES=(
	apt debian-archive-keyring gpgv xz-utils tar gzip patch coreutils util-linux
	golang-go
	golang-github-opencontainers-runtime-tools-dev
	golang-github-google-uuid-dev
	golang-gopkg-yaml.v3-dev
	busybox-static
)

log() { printf '[conformance build] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing packages (install as root): ${missing[*]}"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
		log "install failed; running apt-get update and retrying"
		apt-get update
		apt-get install -y --no-install-recommends "${missing[@]}"
	fi
}

# Print "URI SUITE" for every binary source in the apt configuration, in both
# the deb822 (*.sources) and the one-line (*.list) formats.
apt_sources() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" {
			i = 2
			if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
			print $i, $(i + 1)
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && enabled != "no")
					for (u in uris) for (s in suites) print uris[u], suites[s]
				types = ""; enabled = ""; delete uris; delete suites
			}
			/^[[:space:]]*$/ { flush(); next }
			/^#/ { next }
			tolower($1) == "types:" { types = ""; for (i = 2; i <= NF; i++) types = types " " $i; types = types " " }
			tolower($1) == "uris:" { for (i = 2; i <= NF; i++) uris[i] = $i }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) suites[i] = $i }
			tolower($1) == "enabled:" { enabled = tolower($2) }
			END { flush() }
		' "$f"
	done
}

# The Debian archive mirror: the source serving this machine's own release.
mirror_url() {
	if [ -n "${CONFORMANCE_MIRROR:-}" ]; then
		echo "${CONFORMANCE_MIRROR%/}"
		return
	fi
	local codename url
	# shellcheck disable=SC1091
	codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
	[ -n "$codename" ] || die "cannot tell the release codename from /etc/os-release"
	url="$(apt_sources | awk -v c="$codename" '$2 == c { print $1; exit }')"
	[ -n "$url" ] || die "no apt source for suite '$codename'; set CONFORMANCE_MIRROR"
	echo "${url%/}"
}

download() { # URL FILE [SHA256]
	local url="$1" file="$2" sum="${3:-}"
	rm -f "$file.part"
	# apt-helper drops privileges to _apt, which cannot write into our tree;
	# its warning about that is noise.
	/usr/lib/apt/apt-helper download-file "$url" "$file.part" ${sum:+"SHA256:$sum"} \
		2> >(grep -v 'unsandboxed as root' >&2) >&2
	mv "$file.part" "$file"
}

# Download the source tarballs, verifying them against the signed Release of
# $SUITE (InRelease -> Sources.xz -> tarballs).  Leaves $DL/SHA256SUMS.
fetch_source() {
	mkdir -p "$DL"
	if [ -f "$DL/SHA256SUMS" ] && (cd "$DL" && sha256sum --quiet -c SHA256SUMS) 2>/dev/null; then
		return 0
	fi
	local mirror sources_sum stanza dir
	mirror="$(mirror_url)"
	log "fetching $SRCPKG $VERSION from $SUITE on $mirror"

	download "$mirror/dists/$SUITE/InRelease" "$DL/InRelease"
	if ! gpgv --keyring /usr/share/keyrings/debian-archive-keyring.gpg \
		--output "$DL/Release" "$DL/InRelease" 2>"$DL/gpgv.log"; then
		cat "$DL/gpgv.log" >&2
		die "InRelease of $SUITE does not verify against debian-archive-keyring"
	fi
	sources_sum="$(awk '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 }
		s && $3 == "main/source/Sources.xz" { print $1 }' "$DL/Release")"
	[ -n "$sources_sum" ] || die "no main/source/Sources.xz in the $SUITE Release file"
	download "$mirror/dists/$SUITE/main/source/Sources.xz" "$DL/Sources.xz" "$sources_sum"

	stanza="$(xz -dc "$DL/Sources.xz" | awk -v p="$SRCPKG" -v v="$VERSION" '
		/^$/ { if (pkg == p && ver == v) found = buf; buf = ""; pkg = ""; ver = ""; next }
		{ buf = buf $0 "\n" }
		/^Package: / { pkg = $2 }
		/^Version: / { ver = $2 }
		END { if (pkg == p && ver == v) found = buf; printf "%s", found }')"
	[ -n "$stanza" ] || die "$SRCPKG $VERSION is not in $SUITE any more; set RUNTIME_TOOLS_SUITE/RUNTIME_TOOLS_VERSION"
	dir="$(awk '/^Directory: / { print $2 }' <<<"$stanza")"

	local want=("${SRCPKG}_${UPSTREAM_VERSION}.orig.tar.xz" "${SRCPKG}_${VERSION}.debian.tar.xz")
	local name sum
	: >"$DL/SHA256SUMS.new"
	for name in "${want[@]}"; do
		sum="$(awk -v n="$name" '/^Checksums-Sha256:/ { s = 1; next } /^[^ ]/ { s = 0 }
			s && $3 == n { print $1 }' <<<"$stanza")"
		[ -n "$sum" ] || die "no SHA256 for $name in the $SUITE Sources index"
		download "$mirror/$dir/$name" "$DL/$name" "$sum"
		echo "$sum  $name" >>"$DL/SHA256SUMS.new"
	done
	mv "$DL/SHA256SUMS.new" "$DL/SHA256SUMS"
	rm -f "$DL/Sources.xz" "$DL/InRelease" "$DL/Release" "$DL/gpgv.log"
}

# Unpack into the GOPATH and apply debian/patches/series, unless the tree was
# already unpacked from the same tarballs.
unpack_source() {
	local stamp="$SRC/.husk-unpacked"
	if [ -f "$stamp" ] && cmp -s "$stamp" "$DL/SHA256SUMS"; then
		return 0
	fi
	log "unpacking into $SRC"
	rm -rf "$SRC"
	mkdir -p "$SRC"
	tar -xJf "$DL/${SRCPKG}_${UPSTREAM_VERSION}.orig.tar.xz" -C "$SRC" --strip-components=1
	tar -xJf "$DL/${SRCPKG}_${VERSION}.debian.tar.xz" -C "$SRC"
	if [ -f "$SRC/debian/patches/series" ]; then
		local patchname
		while read -r patchname _; do
			case "$patchname" in '' | '#'*) continue ;; esac
			log "applying $patchname"
			patch -d "$SRC" -p1 --batch --quiet <"$SRC/debian/patches/$patchname"
		done <"$SRC/debian/patches/series"
	fi
	cp "$DL/SHA256SUMS" "$stamp"
}

# Our stand-in for github.com/mndrix/tap-go.
install_tap() {
	local dest="$GOPATH_DIR/src/github.com/mndrix/tap-go"
	mkdir -p "$dest"
	if ! cmp -s "$HERE/tap-go/tap.go" "$dest/tap.go"; then
		cp "$HERE/tap-go/tap.go" "$dest/tap.go"
	fi
}

# Everything the binaries depend on, hashed: skip the build when unchanged.
build_key() {
	{
		cat "$DL/SHA256SUMS" "$HERE/tap-go/tap.go" "${BASH_SOURCE[0]}"
		go version
		dpkg-query -W -f '${Package} ${Version}\n' 'golang-*-dev' 2>/dev/null | sort
	} | sha256sum | cut -d' ' -f1
}

build_binaries() {
	local key tests=() t
	key="$(build_key)"
	for t in "$SRC"/validation/*/; do
		t="$(basename "$t")"
		[ "$t" = util ] || tests+=("$t")
	done
	if [ -f "$BIN/.build-key" ] && [ "$(cat "$BIN/.build-key")" = "$key" ] \
		&& [ -x "$BIN/runtimetest" ] && [ -f "$BIN/rootfs-$(go env GOARCH).tar.gz" ]; then
		local complete=1
		for t in "${tests[@]}"; do [ -x "$BIN/tests/$t" ] || complete=0; done
		if [ "$complete" = 1 ]; then
			log "up to date (${#tests[@]} tests in $BIN)"
			return 0
		fi
	fi

	export GOPATH="$GOPATH_DIR:/usr/share/gocode" GO111MODULE=off GOPROXY=off
	export GOCACHE="$OUT/gocache" CGO_ENABLED=0 GOFLAGS=
	rm -rf "$BIN"
	mkdir -p "$BIN/tests"
	local upstream_version
	upstream_version="$(cat "$SRC/VERSION" 2>/dev/null || echo "$UPSTREAM_VERSION")"
	log "building runtimetest (static)"
	(cd "$SRC" && go build -tags "netgo osusergo" \
		-ldflags "-X main.version=$upstream_version -X main.gitCommit=debian-$VERSION" \
		-o "$BIN/runtimetest" ./cmd/runtimetest)
	log "building ${#tests[@]} validation tests"
	(cd "$SRC" && go build -o "$BIN/tests/" "${tests[@]/#/./validation/}")
	build_rootfs "$BIN/rootfs-$(go env GOARCH).tar.gz"
	echo "$key" >"$BIN/.build-key"
}

# A minimal busybox root filesystem, like upstream's rootfs-*.tar.gz.
build_rootfs() {
	local tarball="$1" root
	root="$(mktemp -d "$OUT/rootfs.XXXXXX")"
	# The tarball's "./" entry sets the mode of the bundle directory the
	# tests unpack it into: it must be searchable by any container user.
	chmod 755 "$root"
	mkdir -p "$root"/{bin,dev,proc,sys,etc}
	cp /bin/busybox "$root/bin/busybox"
	local applet
	for applet in $("$root/bin/busybox" --list); do
		[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
	done
	cat >"$root/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		daemon:x:1:1:daemon:/usr/sbin:/bin/false
		bin:x:2:2:bin:/bin:/bin/false
		sys:x:3:3:sys:/dev:/bin/false
		sync:x:4:65534:sync:/bin:/bin/sync
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	EOF
	cat >"$root/etc/group" <<-'EOF'
		root:x:0:
		daemon:x:1:
		bin:x:2:
		sys:x:3:
		adm:x:4:
		tty:x:5:
		disk:x:6:
		wheel:x:10:root
		users:x:100:
		nogroup:x:65534:
	EOF
	tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 \
		-C "$root" -czf "$tarball" .
	rm -rf "$root"
}

main() {
	local start=$SECONDS
	install_packages
	mkdir -p "$OUT"
	fetch_source
	unpack_source
	install_tap
	build_binaries
	log "done in $((SECONDS - start))s: $BIN"
}

main "$@"
