#!/bin/sh
# Build a Debian chroot with another QEMU than the host's: Debian 13 (trixie) has QEMU 10.0, sid
# (unstable) has Debian's newest QEMU. Used to capture the conformance corpus of that version and,
# for trixie, by the live QMP tests against QEMU 10.0. Uses the Debian mirror the host uses.
#
#   scripts/make-debian-chroot.sh [SUITE [DIR]]   (default SUITE: trixie, DIR: /var/tmp/memtree-SUITE;
#                                                  needs root)
#
# Afterwards run QEMU 10.0 as: chroot DIR qemu-system-x86_64 ...  (proc, dev and the host's /tmp
# are mounted in it).
set -eu
SUITE=${1:-trixie}
DIR=${2:-/var/tmp/memtree-$SUITE}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PKGS="qemu-system-x86 qemu-system-arm qemu-system-misc qemu-system-riscv qemu-system-ppc \
qemu-system-mips qemu-system-s390x qemu-system-sparc qemu-system-data seabios ipxe-qemu opensbi u-boot-qemu \
qemu-efi-aarch64 qemu-efi-arm dpkg-dev"

if [ ! -x "$DIR/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase "$SUITE" "$DIR" "$MIRROR"
fi
mountpoint -q "$DIR/proc" || mount -t proc proc "$DIR/proc"
mountpoint -q "$DIR/dev" || mount --bind /dev "$DIR/dev"
# memtree's private QMP sockets live in the host's /tmp: share it (the marker tells the tests).
mountpoint -q "$DIR/tmp" || mount --bind /tmp "$DIR/tmp"
touch /tmp/.memtree-host-tmp
if [ ! -x "$DIR/usr/bin/qemu-system-x86_64" ]; then
  printf 'Types: deb deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$MIRROR" "$SUITE" > "$DIR/etc/apt/sources.list.d/debian.sources"
  rm -f "$DIR/etc/apt/sources.list"
  # A mirror frozen in time serves an expired sid Release file; its signature is still checked.
  chroot "$DIR" apt-get -o Acquire::Check-Valid-Until=false update -q
  # Packages come and go between releases (sid has no qemu-efi-arm; RISC-V left qemu-system-misc
  # for its own package after trixie): take those it has.
  AVAIL=""
  for p in $PKGS; do
    if chroot "$DIR" apt-cache policy "$p" | grep -q 'Candidate: [0-9]'; then AVAIL="$AVAIL $p"; fi
  done
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive chroot "$DIR" apt-get install -y -q --no-install-recommends $AVAIL
fi
chroot "$DIR" qemu-system-x86_64 --version | head -1
