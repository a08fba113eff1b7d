#!/usr/bin/env bash
# mkimage.sh DIR: makes the busybox test image, with no registry:
#   DIR/rootfs.tar      a rootfs tarball (podman import, docker import)
#   DIR/oci-image.tar   an OCI image layout archive (ctr image import),
#                       written with tar + sha256sum, named
#                       docker.io/library/husktest:latest
set -euo pipefail
out=${1:?usage: mkimage.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
[ -s "$out/oci-image.tar" ] && [ -s "$out/rootfs.tar" ] && exit 0
"$here/../mkrootfs.sh" "$out/rootfs" >/dev/null
tar --sort=name --mtime=@0 --numeric-owner -C "$out/rootfs" -cf "$out/rootfs.tar.tmp" .
mv "$out/rootfs.tar.tmp" "$out/rootfs.tar"

lay=$out/oci; rm -rf "$lay"; mkdir -p "$lay/blobs/sha256"
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
put() { local d; d=$(sha "$1"); mv "$1" "$lay/blobs/sha256/$d"; echo "$d"; }

cp "$out/rootfs.tar" "$lay/layer.tmp"
layer=$(put "$lay/layer.tmp"); lsize=$(size "$lay/blobs/sha256/$layer")
cat >"$lay/config.tmp" <<J
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]},"history":[{"created_by":"husk integration/managers/mkimage.sh"}]}
J
config=$(put "$lay/config.tmp"); csize=$(size "$lay/blobs/sha256/$config")
cat >"$lay/manifest.tmp" <<J
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$csize},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer","size":$lsize}]}
J
manifest=$(put "$lay/manifest.tmp"); msize=$(size "$lay/blobs/sha256/$manifest")
cat >"$lay/index.json" <<J
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$msize,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"docker.io/library/husktest:latest","io.containerd.image.name":"docker.io/library/husktest:latest"}}]}
J
echo '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"
tar --sort=name --mtime=@0 -C "$lay" -cf "$out/oci-image.tar.tmp" oci-layout index.json blobs
mv "$out/oci-image.tar.tmp" "$out/oci-image.tar"
echo "image ready: $out/oci-image.tar ($lsize bytes layer)" >&2
