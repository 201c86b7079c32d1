#!/usr/bin/env bash
# Assemble, without any container registry, a stand-in for python:3.13-slim-trixie
# in a private buildah store: Debian trixie (minbase; its python3 is 3.13) from the
# Debian mirror with debootstrap, `python` and `pip` where the official image has
# them, and the host's CA bundle so pip and uv inside a build trust what the host
# trusts. Used by tests/test_image.py (`make image-test`). Needs root, buildah and
# debootstrap. Usage: scripts/local_base_image.sh STORE_DIR
set -euo pipefail

store="$1"
image="docker.io/library/python:3.13-slim-trixie"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
store_buildah=(buildah --root "$store/storage" --runroot "$store/run")

if "${store_buildah[@]}" inspect --type image "$image" >/dev/null 2>&1; then
    exit 0
fi
rootfs="$(mktemp -d)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    trixie "$rootfs" "$mirror" >"$store/debootstrap.log"
for name in python python3; do
    ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/$name"
done
ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

container="$("${store_buildah[@]}" from scratch)"
mount="$("${store_buildah[@]}" mount "$container")"
cp -a "$rootfs/." "$mount/"
"${store_buildah[@]}" umount "$container" >/dev/null
# Debian marks its Python externally managed; the official image does not.
"${store_buildah[@]}" config --cmd python3 \
    --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --env PIP_BREAK_SYSTEM_PACKAGES=1 \
    --env PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "$container"
"${store_buildah[@]}" commit --quiet "$container" "$image" >/dev/null
"${store_buildah[@]}" rm "$container" >/dev/null
echo "assembled $image in $store"
