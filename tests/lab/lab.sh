#!/bin/bash
# The kernel lab: a Debian release's stock kernel (kprobes, fentry, BTF, openvswitch.ko) under qemu (TCG, no
# KVM needed) with bookworm's userland (ovs-vswitchd, iproute2, python3, nc). Needs root.
# NETSCRIPT_LAB_KERNEL chooses the release: bullseye (Linux 5.10), bookworm (6.1, the default), trixie (6.12).
#   lab.sh dir                               print the lab directory, building the lab first if missing
#   lab.sh run [-w DIR] [-t SECS] SCRIPT     boot, run SCRIPT with bash in the guest (cwd = a copy of this
#                                            directory with the repository's scripts/ in it, /mnt/host), print
#                                            its output, exit with its exit code
#                                            (125: the guest gave none: boot failure, crash or timeout)
#   lab.sh shell [-w DIR]                    interactive root shell on the serial console (Ctrl-a x quits)
# -w DIR: host DIR read-only at /mnt/work, first in the guest's PATH (e.g. cargo's target/release).
# The lab is cached in $NETSCRIPT_LAB, default /var/tmp/netscript-lab-<release>-<hash of build.sh and
# guest-init>: editing either builds a new one; delete the directory to rebuild. At most LAB_VMS (default 2)
# VMs run at a time on this host, further runs wait for a slot. qemu runs a guest's CPUs on one host thread
# (LAB_TCG_THREAD=single; multi gives each its own): a guest keeps about one core busy on average, so two
# guests share two cores without slowing each other, which they do with a thread per guest CPU.
# Env: LAB_MEM (MiB, default 1024), LAB_SMP (default 2), LAB_KEEP=1 keeps the job directory (console.log).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=${NETSCRIPT_LAB_KERNEL:-bookworm}
case "$SUITE" in bullseye|bookworm|trixie) ;; *) echo "lab.sh: NETSCRIPT_LAB_KERNEL=$SUITE: not bullseye, bookworm or trixie" >&2; exit 2;; esac
LAB=${NETSCRIPT_LAB:-/var/tmp/netscript-lab-$SUITE-$(cat "$HERE/build.sh" "$HERE/guest-init" | sha256sum | cut -c1-12)}
CMD=${1:-}; shift || true
WORK=""; TMO=300
while [ $# -gt 0 ]; do case "$1" in -w) WORK=$(realpath "$2"); shift;; -t) TMO=$2; shift;; *) break;; esac; shift; done

# Build once; concurrent callers wait on the lock instead of building twice.
if [ ! -f "$LAB/vmlinux" ]; then
  exec 9>"$LAB.lock"; flock 9
  [ -f "$LAB/vmlinux" ] || "$HERE/build.sh" "$LAB" "$SUITE" >&2
  exec 9>&-
fi

qemu() { # $1 = job directory, $2 = extra kernel command line
  local append="console=ttyS0 panic=-1 quiet $2" q
  q=(qemu-system-x86_64 -accel "tcg,thread=${LAB_TCG_THREAD:-single}" -cpu max -m "${LAB_MEM:-1024}" -smp "${LAB_SMP:-2}"
     -nographic -no-reboot -nic none -kernel "$LAB/vmlinux" -initrd "$LAB/initramfs.cpio.gz"
     -virtfs "local,path=$LAB/rootfs,mount_tag=rootfs,security_model=none,readonly=on,id=rootfs"
     -virtfs "local,path=$LAB/lib/modules,mount_tag=modules,security_model=none,readonly=on,id=modules"
     -virtfs "local,path=$1,mount_tag=job,security_model=none,id=job")
  [ -z "$WORK" ] || { q+=(-virtfs "local,path=$WORK,mount_tag=work,security_model=none,readonly=on,id=work"); append+=" lab.work=1"; }
  exec "${q[@]}" -append "$append"
}
newjob() { mkdir -p "$LAB/jobs"; J=$(mktemp -d "$LAB/jobs/job.XXXXXX"); cp -r "$HERE"/. "$J"/; cp -r "$HERE"/../../scripts "$J"/; }

case "$CMD" in
dir) echo "$LAB" ;;
run)
  [ $# -ge 1 ] || { echo "lab.sh run: no script" >&2; exit 2; }
  newjob; cp "$1" "$J/cmd.sh"
  # take one of LAB_VMS slots (a lock file each), waiting while all are taken
  for ((;;)); do
    for ((slot = 0; slot < ${LAB_VMS:-2}; slot++)); do
      exec 8>"/var/tmp/netscript-lab-vm.$slot.lock"; flock -n 8 && break 2
    done
    exec 8>&-; sleep 0.2
  done
  # qemu must not hold the lock (fd 8): killed with lab.sh, it would keep every other run waiting
  qemu "$J" "" > "$J/console.log" 2>&1 < /dev/null 8>&- & QPID=$!
  # wait for power-off; kill qemu at the timeout, or 10 s after the exit code appeared (guest stuck at shutdown)
  for ((i = 0; i < TMO * 10; i++)); do
    kill -0 $QPID 2>/dev/null || break
    [ -f "$J/rc" ] && { GRACE=$((${GRACE:-0} + 1)); [ "$GRACE" -le 100 ] || break; }
    sleep 0.1
  done
  kill $QPID 2>/dev/null || true; wait $QPID 2>/dev/null || true
  [ ! -f "$J/out.txt" ] || cat "$J/out.txt"
  if [ -f "$J/rc" ]; then RC=$(cat "$J/rc"); else
    echo "lab: the guest gave no exit code (boot failure, crash or timeout after ${TMO}s); console:" >&2
    tail -30 "$J/console.log" >&2; RC=125; fi
  [ -n "${LAB_KEEP:-}" ] || rm -rf "$J"
  exit "$RC" ;;
shell) newjob; qemu "$J" "lab.shell=1" ;;
*) sed -n '2,16p' "$0"; exit 2 ;;
esac
