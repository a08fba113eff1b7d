#!/usr/bin/env bash
# mkimage.sh DIR: makes the test images, with no registry:
#   DIR/rootfs.tar        a busybox rootfs tarball (podman import, docker import)
#   DIR/oci-image.tar     it as an OCI image layout archive (ctr image import),
#                         named docker.io/library/husktest:latest
#   DIR/pause-image.tar   the pod sandbox image of the CRI scenarios
#                         (integration/cri/pause.c, static), named
#                         localhost/husk/pause:1
# The archives are written with tar + sha256sum.
set -euo pipefail
out=${1:?usage: mkimage.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"

# oci_archive LAYER_TAR NAME CONFIG_FIELDS OUT: an OCI image layout archive of
# one layer; CONFIG_FIELDS is the JSON of the image config's "config" object
oci_archive() {
  local layer_tar=$1 name=$2 fields=$3 dest=$4
  local lay; lay=$(mktemp -d "$out/oci.XXXXXX")
  mkdir -p "$lay/blobs/sha256"
  sha() { sha256sum "$1" | cut -d' ' -f1; }
  size() { stat -c %s "$1"; }
  put() { local d; d=$(sha "$1"); mv "$1" "$lay/blobs/sha256/$d"; echo "$d"; }
  cp "$layer_tar" "$lay/layer.tmp"
  local layer lsize config csize manifest msize
  layer=$(put "$lay/layer.tmp"); lsize=$(size "$lay/blobs/sha256/$layer")
  cat >"$lay/config.tmp" <<J
{"architecture":"amd64","os":"linux","config":$fields,"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]},"history":[{"created_by":"husk integration/managers/mkimage.sh"}]}
J
  config=$(put "$lay/config.tmp"); csize=$(size "$lay/blobs/sha256/$config")
  cat >"$lay/manifest.tmp" <<J
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$csize},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer","size":$lsize}]}
J
  manifest=$(put "$lay/manifest.tmp"); msize=$(size "$lay/blobs/sha256/$manifest")
  cat >"$lay/index.json" <<J
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$msize,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"$name","io.containerd.image.name":"$name"}}]}
J
  echo '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"
  tar --sort=name --mtime=@0 -C "$lay" -cf "$dest.tmp" oci-layout index.json blobs
  mv "$dest.tmp" "$dest"
  rm -rf "$lay"
  echo "image ready: $dest ($name, $lsize bytes layer)" >&2
}

if ! [ -s "$out/oci-image.tar" ] || ! [ -s "$out/rootfs.tar" ]; then
  "$here/../mkrootfs.sh" "$out/rootfs" >/dev/null
  tar --sort=name --mtime=@0 --numeric-owner -C "$out/rootfs" -cf "$out/rootfs.tar.tmp" .
  mv "$out/rootfs.tar.tmp" "$out/rootfs.tar"
  oci_archive "$out/rootfs.tar" docker.io/library/husktest:latest \
    '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"}' \
    "$out/oci-image.tar"
fi

if ! [ -s "$out/pause-image.tar" ]; then
  rm -rf "$out/pause"; mkdir -p "$out/pause"
  gcc -static -Os -o "$out/pause/pause" "$here/../cri/pause.c"
  strip "$out/pause/pause"
  tar --sort=name --mtime=@0 --numeric-owner --owner=0 --group=0 -C "$out/pause" -cf "$out/pause.tar" pause
  oci_archive "$out/pause.tar" localhost/husk/pause:1 \
    '{"Entrypoint":["/pause"],"User":"65535:65535"}' "$out/pause-image.tar"
fi
