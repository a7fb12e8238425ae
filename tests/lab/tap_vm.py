"""tap_vm.py PORT VM_NETNS NIC: a "VM" as qemu makes one, for the lab's VM topology (vm_topology.sh).
Run in the host's namespace: opens tap device PORT there (the VM's port on the switch) and tap device NIC
in namespace VM_NETNS (the VM's network card, whose kernel stack plays the guest's), then copies every
frame between them as qemu's virtio-net backend does: a frame the VM sends enters the host at PORT
(tun_get_user -> netif_rx), a frame the host sends to PORT (tun_net_xmit) is delivered to the VM. Creates
/tmp/tap_vm.ready once both devices exist."""
import ctypes, fcntl, os, select, struct, sys

TUNSETIFF, IFF_TAP, IFF_NO_PI, CLONE_NEWNET = 0x400454CA, 0x0002, 0x1000, 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def enter(netns_file):
    fd = os.open(netns_file, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        sys.exit("tap_vm.py: setns %s: %s" % (netns_file, os.strerror(ctypes.get_errno())))
    os.close(fd)


def tap(name):
    # The device is made in the namespace the process is in when it opens /dev/net/tun.
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


port_name, vm_netns, nic_name = sys.argv[1:4]
host = os.open("/proc/self/ns/net", os.O_RDONLY)
enter("/run/netns/" + vm_netns)
nic = tap(nic_name)
enter("/proc/self/fd/%d" % host)
port = tap(port_name)
open("/tmp/tap_vm.ready", "w").close()
peer = {nic: port, port: nic}
while True:
    for fd in select.select([nic, port], [], [])[0]:
        os.write(peer[fd], os.read(fd, 65536))
