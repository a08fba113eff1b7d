# Shell shared by the QEMU test guests (integration/cgroupv2, integration/systemd).
# Sourced, not run. Every function takes the guest's tag (cgroupv2, systemd)
# first: it prefixes the messages.
#
#   guest_need_pkgs TAG PKG...        install the Debian packages dpkg -s says are missing
#   guest_kernel TAG B                Debian's kernel unpacked in B/kernel (never installed),
#                                     B/vmlinux; sets GUEST_KPKG, GUEST_KVER
#   guest_modules TAG B DIR MOD...    the modules (paths under kernel/, e.g. fs/9p/9p, with
#                                     optional insmod arguments after a space) into DIR/modules,
#                                     uncompressed, with DIR/modules/order
#   guest_new_run TAG B               a new run directory B/runs/<time>.XXXX (RUN), B/last -> it,
#                                     the 3 newest kept
#   guest_boot_retry TAG LOG TIMEOUT FIRST QEMU-COMMAND...
#                                     boot, bounded by TIMEOUT s, relaying the console LOG;
#                                     retried once when nothing is printed within FIRST s
#   guest_compare TAG EXPECTED RESULTS ELAPSED [RUNTIME]
#                                     one-line summary of RESULTS against EXPECTED; fails when
#                                     a result differs from what is expected (with
#                                     GUEST_UNEXPECTED_PASS=report, a scenario expected to
#                                     fail that passes is only reported; GUEST_SUMMARY_EXTRA
#                                     is appended to the summary line)

guest_say() { local t=$1; shift; echo "$t: $*" >&2; }

guest_need_pkgs() {
  local tag=$1 p need=""
  shift
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
  [ -n "$need" ] || return 0
  guest_say "$tag" "installing$need"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null; } ||
    { guest_say "$tag" "could not install$need"; return 1; }
}

guest_kernel() {
  local tag=$1 B=$2 pkg z off o
  # The versioned image package behind the linux-image-amd64 metapackage.
  if [ -s "$B/kernel.pkg" ]; then
    pkg=$(cat "$B/kernel.pkg")
  else
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    if [ -z "$pkg" ]; then
      apt-get update -qq
      pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    fi
    [ -n "$pkg" ] || { guest_say "$tag" "cannot find the kernel package of linux-image-amd64"; return 1; }
  fi
  GUEST_KPKG=$pkg
  GUEST_KVER=${pkg#linux-image-}
  if [ ! -f "$B/kernel/boot/vmlinuz-$GUEST_KVER" ]; then
    rm -rf "$B/kernel" "$B/vmlinux"
    # Another guest of this tree may have unpacked the same package already:
    # hard links, no second download.
    for o in "$B"/../*/kernel; do
      if [ -f "$o/boot/vmlinuz-$GUEST_KVER" ] && [ "$(cd "$o/.." && pwd)" != "$B" ]; then
        guest_say "$tag" "kernel $pkg linked from $(cd "$o" && pwd)"
        cp -al "$o" "$B/kernel" && break
        rm -rf "$B/kernel"
      fi
    done
  fi
  if [ ! -f "$B/kernel/boot/vmlinuz-$GUEST_KVER" ]; then
    mkdir -p "$B/dl"
    rm -f "$B"/dl/*.deb
    guest_say "$tag" "downloading $pkg (not installed: unpacked into $B/kernel)"
    # (apt warns that root downloads unsandboxed: its log goes to dl/apt.log)
    if ! (cd "$B/dl" && apt-get download "$pkg" >apt.log 2>&1); then
      apt-get update -qq
      (cd "$B/dl" && apt-get download "$pkg" >apt.log 2>&1) || { cat "$B/dl/apt.log" >&2; return 1; }
    fi
    rm -rf "$B/kernel"
    dpkg-deb -x "$B"/dl/"$pkg"_*.deb "$B/kernel" || return 1
    rm -f "$B"/dl/*.deb "$B/vmlinux"
  fi
  echo "$pkg" > "$B/kernel.pkg"
  # vmlinux: the xz payload of the bzImage (Debian builds with CONFIG_KERNEL_XZ);
  # QEMU boots an ELF vmlinux directly (PVH), faster than a bzImage through SeaBIOS.
  if [ ! -s "$B/vmlinux" ]; then
    z=$B/kernel/boot/vmlinuz-$GUEST_KVER
    off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$z" | awk -F: 'NR == 1 { print $1 }')
    [ -n "$off" ] || { guest_say "$tag" "no xz payload in $z"; return 1; }
    # (xz stops after the stream: tail may die of SIGPIPE, which is fine)
    (set +o pipefail; tail -c +"$((off + 1))" "$z" | xz -dc --single-stream > "$B/vmlinux.tmp")
    [ "$(head -c 4 "$B/vmlinux.tmp" | tail -c 3)" = ELF ] || { guest_say "$tag" "$z did not give an ELF vmlinux"; return 1; }
    mv "$B/vmlinux.tmp" "$B/vmlinux"
  fi
}

guest_modules() {
  local tag=$1 B=$2 dir=$3 spec mod args f m
  shift 3
  m=$B/kernel/lib/modules/$GUEST_KVER/kernel
  mkdir -p "$dir/modules"
  : > "$dir/modules/order"
  # in the order given (dependencies first, from each module's depends=)
  for spec in "$@"; do
    mod=${spec%% *}
    args=""
    [ "$mod" = "$spec" ] || args=" ${spec#* }"
    f=$m/$mod.ko
    [ -f "$f" ] || f=$m/$mod.ko.xz
    [ -f "$f" ] || { guest_say "$tag" "module $mod missing in $GUEST_KPKG"; return 1; }
    case $f in *.xz) xz -dc "$f" > "$dir/modules/$(basename "$mod").ko" ;; *) cp "$f" "$dir/modules/" ;; esac
    echo "$(basename "$mod").ko$args" >> "$dir/modules/order"
  done
}

guest_new_run() {
  local tag=$1 B=$2
  # Each run has its own directory (two runs at once must not share a
  # console file); B/last points to the newest, the 3 newest are kept.
  mkdir -p "$B/runs"
  RUN=$(mktemp -d "$B/runs/$(date +%Y%m%d-%H%M%S).XXXX")
  ln -sfn "runs/$(basename "$RUN")" "$B/last"
  ls -1dt "$B"/runs/*/ 2>/dev/null | tail -n +4 | xargs -r rm -rf
}

# guest_boot TAG LOG TIMEOUT FIRST QEMU-COMMAND...: 0 when QEMU ended by
# itself, 1 when it was killed at TIMEOUT, 2 when it printed nothing within
# FIRST seconds (killed). QEMU's stderr goes to LOG's directory, qemu.log.
guest_boot() {
  local tag=$1 log=$2 timeout=$3 first=$4
  shift 4
  : > "$log"
  "$@" </dev/null >"$(dirname "$log")/qemu.log" 2>&1 &
  local qpid=$! start=$SECONDS printed=0 shown=0 n rc
  # interrupted (Ctrl-C, a CI timeout): no QEMU left behind
  GUEST_QPID=$qpid
  trap 'kill -9 "$GUEST_QPID" 2>/dev/null; exit 130' INT TERM HUP
  while kill -0 "$qpid" 2>/dev/null; do
    if [ "$printed" = 0 ] && [ -s "$log" ]; then printed=1; fi
    if [ "$printed" = 0 ] && [ $((SECONDS - start)) -ge "$first" ]; then
      kill -9 "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; trap - INT TERM HUP
      return 2 # hung before the first console line
    fi
    if [ $((SECONDS - start)) -ge "$timeout" ]; then
      kill -9 "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; trap - INT TERM HUP
      guest_say "$tag" "guest timed out after ${timeout}s"
      return 1
    fi
    # relay the console as it comes
    n=$(wc -l < "$log")
    if [ "$n" -gt "$shown" ]; then sed -n "$((shown + 1)),${n}p" "$log" | tr -d '\r'; shown=$n; fi
    sleep 0.2
  done
  wait "$qpid"
  rc=$?
  trap - INT TERM HUP
  n=$(wc -l < "$log")
  [ "$n" -gt "$shown" ] && sed -n "$((shown + 1)),\$p" "$log" | tr -d '\r'
  [ "$rc" = 0 ] || { guest_say "$tag" "qemu exited with $rc:"; cat "$(dirname "$log")/qemu.log" >&2; }
  return 0
}

guest_boot_retry() {
  local tag=$1 first=$4 r
  guest_boot "$@"; r=$?
  if [ "$r" = 2 ]; then
    guest_say "$tag" "no console output in ${first}s, retrying the boot once"
    guest_boot "$@"; r=$?
    [ "$r" = 2 ] && guest_say "$tag" "guest hung twice before its first console line"
  fi
  return "$r"
}

# guest_compare TAG EXPECTED RESULTS ELAPSED [RUNTIME]
# RESULTS: "scenario<TAB>pass|fail|unchecked" lines. EXPECTED: tab-separated,
# "scenario expected reason", or with RUNTIME "scenario runtime expected
# reason" (only the RUNTIME's lines, or "*"); a scenario not listed is
# expected to pass. Prints a summary; fails when a scenario expected to pass
# did not, one expected to fail passed, or one could not be checked.
guest_compare() {
  local tag=$1 expected=$2 results=$3 elapsed=$4 runtime=${5:-}
  awk -F'\t' -v tag="$tag" -v elapsed="$elapsed" -v rt="$runtime" -v unexp_mode="${GUEST_UNEXPECTED_PASS:-fail}" -v extra="${GUEST_SUMMARY_EXTRA:-}" '
    FNR == NR {
      if ($1 == "" || $1 ~ /^#/ || $1 == "scenario") next
      if (rt == "") { ex[$1] = $2; why[$1] = $3 }
      else if ($2 == rt || $2 == "*") { ex[$1] = $3; why[$1] = $4 }
      next
    }
    { res[$1] = $2; order[++n] = $1 }
    END {
      for (i = 1; i <= n; i++) {
        s = order[i]; r = res[s]; e = (s in ex) ? ex[s] : "pass"
        if (r == "pass") passed++
        if (r == "unchecked") { unchecked = unchecked " " s; continue }
        if (e == "pass" && r != "pass") reg = reg " " s
        if (e != "pass" && r == "pass") unexp = unexp " " s
        if (e != "pass" && r != "pass") { known = known " " s; reasons[why[s]] = reasons[why[s]] " " s }
      }
      printf "%s: %s%d of %d scenarios pass, %d expected to fail, guest run %ds%s\n", tag,
        (rt == "" ? "" : rt ": "), passed, n, split(known, _k, " "), elapsed, extra
      for (w in reasons) printf "%s: expected failures (%s):%s\n", tag, (w == "" ? "see expected.tsv" : w), reasons[w]
      bad = 0
      if (n == 0) { printf "%s: FAILED, no scenario ran\n", tag; bad = 1 }
      if (unchecked != "") { printf "%s: FAILED, could not check:%s\n", tag, unchecked; bad = 1 }
      if (unexp != "" && unexp_mode == "report") printf "%s: now passes, update expected.tsv:%s\n", tag, unexp
      else if (unexp != "") { printf "%s: FAILED, now passes: update expected.tsv:%s\n", tag, unexp; bad = 1 }
      if (reg != "") { printf "%s: FAILED, expected to pass but did not:%s\n", tag, reg; bad = 1 }
      exit bad
    }' "$expected" "$results" >&2
}
