"""A minimal "VM" on a tap device: sends ICMP echo requests and waits for the replies.

usage: tap_vm.py TAP VM_MAC VM_IP PEER_MAC PEER_IP COUNT
Attaches to the existing tap device TAP (as qemu does), sends COUNT echo
requests (id 0x4242, sequence 1..COUNT) from VM_MAC/VM_IP to PEER_MAC/PEER_IP,
one after the other's reply, and exits 0 when every reply came back.

Attaching turns the tap's carrier on, but the kernel applies that later
(linkwatch): until then the tap's qdisc drops what is sent to it and, in a
bridge, the port drops what the tap sends. So the first request waits
until the tap is up and, as a bridge port, forwarding.
"""
import fcntl
import os
import select
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(vm_mac, vm_ip, peer_mac, peer_ip, seq):
    payload = b"netscript-vm" * 4
    icmp = struct.pack("!BBHHH", 8, 0, 0, 0x4242, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), seq, 0, 64, 1, 0,
                     socket.inet_aton(vm_ip), socket.inet_aton(peer_ip))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return peer_mac + vm_mac + b"\x08\x00" + ip + icmp


def is_reply(frame, seq):
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 1:
        return False
    ihl = (frame[14] & 0xF) * 4
    icmp = frame[14 + ihl:]
    return icmp[0] == 0 and struct.unpack("!HH", icmp[4:8]) == (0x4242, seq)


BR_STATE_FORWARDING = "3"


def wait_until_forwarding(tap, seconds=5):
    """Waits until TAP's carrier is applied and, as a bridge port, it forwards."""
    base = "/sys/class/net/%s/" % tap
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(base + "operstate") as f:
            up = f.read().strip() == "up"
        if up and os.path.exists(base + "brport"):
            with open(base + "brport/state") as f:
                up = f.read().strip() == BR_STATE_FORWARDING
        if up:
            return
        time.sleep(0.01)
    sys.exit("%s did not come up within %d s" % (tap, seconds))


def main():
    tap, vm_mac, vm_ip, peer_mac, peer_ip, count = sys.argv[1:7]
    vm_mac, peer_mac = bytes.fromhex(vm_mac.replace(":", "")), bytes.fromhex(peer_mac.replace(":", ""))
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", tap.encode(), IFF_TAP | IFF_NO_PI))
    wait_until_forwarding(tap)
    for seq in range(1, int(count) + 1):
        os.write(fd, echo_request(vm_mac, vm_ip, peer_mac, peer_ip, seq))
        while True:
            ready, _, _ = select.select([fd], [], [], 3)
            if not ready:
                sys.exit("no reply to echo %d" % seq)
            if is_reply(os.read(fd, 2048), seq):
                break


main()
