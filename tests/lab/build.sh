#!/bin/bash
# Builds the kernel lab into directory $1 (root, Debian apt; ~1 min, ~400 MB) with the stock kernel of Debian
# release $2 (bullseye: 5.10, bookworm: 6.1, the default, trixie: 6.12) and bookworm's userland:
#   vmlinux                 the kernel, uncompressed (qemu boots it directly: no slow xz under TCG; trixie's
#                           zstd bzImage is booted as it is)
#   lib/modules/            its modules, without the hardware drivers the lab never loads
#   initramfs.cpio.gz       busybox + the virtio/9p/overlay modules + guest-init
#   rootfs/                 minimal Debian userland (OVS, iproute2, python3, libelf for netscript)
# Called by lab.sh when its cache directory is missing; writes into a temporary directory first.
set -euo pipefail
OUT=$1; SUITE=${2:-bookworm}; HERE=$(cd "$(dirname "$0")" && pwd)
B=$OUT.building; rm -rf "$B"; mkdir -p "$B/debs"; cd "$B"
export DEBIAN_FRONTEND=noninteractive
MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# Another release's kernel comes from that release's package index, kept apart from the system's.
APTK=(-o APT::Sandbox::User=root)
if [ "$SUITE" != bookworm ]; then
  A=$B/apt; mkdir -p "$A/etc/preferences.d" "$A/lists/partial" "$A/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $SUITE main" > "$A/etc/sources.list"
  APTK+=(-o "Dir::Etc=$A/etc" -o "Dir::State::Lists=$A/lists" -o "Dir::Cache=$A/cache")
  apt-get "${APTK[@]}" update -qq
fi
# the kernel package linux-image-amd64 currently points at, and a static busybox for the initramfs
kpkg() { apt-cache "${APTK[@]}" depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
KPKG=$(kpkg); [ -n "$KPKG" ] || { apt-get "${APTK[@]}" update -qq; KPKG=$(kpkg); }
[ -n "$KPKG" ] || { echo "no linux-image-amd64 in Debian $SUITE at $MIRROR" >&2; exit 1; }
(cd debs && apt-get download -qq "${APTK[@]}" "$KPKG" && apt-get download -qq -o APT::Sandbox::User=root busybox-static)
dpkg-deb -x debs/linux-image-*.deb kpkg; dpkg-deb -x debs/busybox-static_*.deb bb
[ ! -d kpkg/usr/lib/modules ] || { mkdir -p kpkg/lib; mv kpkg/usr/lib/modules kpkg/lib/; }   # merged /usr (trixie)
K=$(ls kpkg/lib/modules); M=kpkg/lib/modules/$K/kernel
rm -rf $M/sound $M/drivers/{gpu,media,infiniband,usb,scsi,staging,bluetooth,input,hid,iio,isdn,net/wireless,net/ethernet,net/can} \
       $M/net/{bluetooth,wireless,mac80211,ceph,sunrpc,rxrpc,tipc,sctp,dccp,can} $M/fs/{nfs,nfsd,smb,xfs,btrfs,ocfs2,gfs2,f2fs}
# compressed modules (trixie: .ko.xz): unpacked, so that busybox's modprobe in the initramfs loads them
find kpkg/lib/modules -name '*.ko.xz' -exec xz -d {} +
mkdir -p lib; mv kpkg/lib/modules lib/; depmod -b . "$K"
python3 - "kpkg/boot/vmlinuz-$K" vmlinux <<'PY'
import lzma, sys  # vmlinuz = boot stub + xz payload (an ELF with a PVH entry note), or a zstd bzImage
d = open(sys.argv[1], 'rb').read(); i = d.find(b'\xfd7zXZ\x00')
out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(d[i:]) if i >= 0 else d
open(sys.argv[2], 'wb').write(out)
PY
# initramfs: busybox, the modules needed to mount the 9p/overlay root (with their dependencies), guest-init
IR=initramfs; MD=lib/modules/$K
mkdir -p $IR/{bin,proc,sys,dev,newroot,lib/modules/$K}
cp bb/bin/busybox $IR/bin/; for a in sh mount mkdir modprobe switch_root poweroff cp; do ln -s busybox $IR/bin/$a; done
add() { [ -e "$IR/lib/modules/$K/$1" ] && return; mkdir -p "$IR/lib/modules/$K/$(dirname "$1")"; cp "$MD/$1" "$IR/lib/modules/$K/$1"
  for d in $(grep "^$1:" $MD/modules.dep | cut -d: -f2); do add "$d"; done; }
for w in crc32c_generic virtio_pci 9pnet_virtio 9p overlay; do add "$(grep -E "/$w\.ko:" $MD/modules.dep | cut -d: -f1)"; done
cp $MD/modules.order $MD/modules.builtin* $IR/lib/modules/$K/; depmod -b $IR "$K"
cp "$HERE/guest-init" $IR/init; chmod +x $IR/init
(cd $IR && find . | cpio -o -H newc --quiet | gzip -1) > initramfs.cpio.gz
# rootfs from the mirror this machine's apt uses
debootstrap --variant=minbase --include=openvswitch-switch,iproute2,iputils-ping,kmod,procps,netcat-openbsd,python3-minimal,libelf1,zlib1g \
  bookworm rootfs "$MIRROR" >debootstrap.log 2>&1 || { tail -20 debootstrap.log; exit 1; }
chroot rootfs apt-get clean; rm -rf rootfs/var/lib/apt/lists/*
rm -rf debs apt kpkg bb $IR debootstrap.log
rm -rf "$OUT"; mv "$B" "$OUT"
echo "lab ($SUITE, Linux $K) built in $OUT ($(du -sh "$OUT" | cut -f1))"
