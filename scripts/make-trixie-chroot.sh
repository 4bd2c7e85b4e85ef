#!/bin/sh
# Build a Debian 13 (trixie) chroot with QEMU 10.0, for capturing the QEMU 10.0 corpus and for
# the live QMP test against QEMU 10.0. Uses the same Debian mirror as the host's apt sources.
#
#   scripts/make-trixie-chroot.sh [DIR]      (default DIR: /var/tmp/memtree-trixie; needs root)
#
# Afterwards run QEMU 10.0 as: chroot DIR qemu-system-x86_64 ...  (proc, dev and the host's /tmp
# are mounted in it).
set -eu
DIR=${1:-/var/tmp/memtree-trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PKGS="qemu-system-x86 qemu-system-arm qemu-system-misc qemu-system-ppc qemu-system-mips \
qemu-system-s390x qemu-system-sparc qemu-system-data seabios ipxe-qemu opensbi u-boot-qemu \
qemu-efi-aarch64 qemu-efi-arm dpkg-dev"

if [ ! -x "$DIR/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase trixie "$DIR" "$MIRROR"
fi
mountpoint -q "$DIR/proc" || mount -t proc proc "$DIR/proc"
mountpoint -q "$DIR/dev" || mount --bind /dev "$DIR/dev"
# memtree's private QMP sockets live in the host's /tmp: share it (the marker tells the tests).
mountpoint -q "$DIR/tmp" || mount --bind /tmp "$DIR/tmp"
touch /tmp/.memtree-host-tmp
if [ ! -x "$DIR/usr/bin/qemu-system-x86_64" ]; then
  printf 'Types: deb deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$MIRROR" > "$DIR/etc/apt/sources.list.d/debian.sources"
  rm -f "$DIR/etc/apt/sources.list"
  chroot "$DIR" apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive chroot "$DIR" apt-get install -y -q --no-install-recommends $PKGS
fi
chroot "$DIR" qemu-system-x86_64 --version | head -1
