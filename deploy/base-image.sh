#!/bin/sh
# Make a Debian bookworm base image with Python 3 from scratch, for hosts that cannot pull
# images (air-gapped build machines, the test tier): debootstrap a minimal root file system
# and import it. Usage: deploy/base-image.sh [IMAGE] [MIRROR]
#   IMAGE   default localhost/bookworm-py
#   MIRROR  default http://deb.debian.org/debian
# Needs root (or fakeroot), debootstrap and podman (or docker: set ENGINE=docker).
set -eu
IMAGE=${1:-localhost/bookworm-py}
MIRROR=${2:-http://deb.debian.org/debian}
ENGINE=${ENGINE:-podman}
ROOTFS=$(mktemp -d "${TMPDIR:-/tmp}/corral-rootfs.XXXXXX")
trap 'rm -rf "$ROOTFS"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$ROOTFS" "$MIRROR"
# apt lists, caches and docs are not needed in a base image (about 60 MB).
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/locale/*
tar -C "$ROOTFS" -c . | "$ENGINE" import - "$IMAGE"
