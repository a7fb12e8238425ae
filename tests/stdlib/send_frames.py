"""Sends hand-built Ethernet frames through an AF_PACKET socket.

usage: send_frames.py DEV COUNT
Every frame goes out COUNT times: IPv4/UDP untagged; IPv4/UDP in an 802.1Q
tag (VLAN 100); IPv6 with a hop-by-hop header then UDP in QinQ (802.1ad
VLAN 200 outside, 802.1Q VLAN 300 inside); IPv6/TCP SYN+ACK in an 802.1Q
tag (VLAN 5); a later IPv4 fragment of a UDP datagram (offset 185 * 8).
"""
import socket
import struct
import sys

SRC_MAC = bytes.fromhex("02000000aa01")
DST_MAC = bytes.fromhex("02000000aa02")


def tag(tpid, vid):
    return struct.pack("!HH", tpid, vid)


def ipv4(proto, payload, ident, frag=0):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0,
                         socket.inet_aton("10.99.0.1"), socket.inet_aton("10.99.0.2"))
    return header + payload


def ipv6(next_header, payload):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, 64,
                       socket.inet_pton(socket.AF_INET6, "fd99::1"),
                       socket.inet_pton(socket.AF_INET6, "fd99::2")) + payload


def udp(sport, dport, data):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def tcp(sport, dport, seq, ack, flags):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 1000, 0, 0)


def frame(tags, ethertype, packet):
    return DST_MAC + SRC_MAC + b"".join(tags) + struct.pack("!H", ethertype) + packet


hop_by_hop = struct.pack("!BB6s", 17, 0, bytes(6))  # next header UDP, 8 bytes
frames = [
    frame([], 0x0800, ipv4(17, udp(1111, 2222, b"x" * 10), 7)),
    frame([tag(0x8100, 100)], 0x0800, ipv4(17, udp(1111, 2223, b"y" * 20), 8)),
    frame([tag(0x88A8, 200), tag(0x8100, 300)], 0x86DD, ipv6(0, hop_by_hop + udp(3333, 4444, b"z" * 30))),
    frame([tag(0x8100, 5)], 0x86DD, ipv6(6, tcp(5555, 6666, 1000, 2000, 0x12))),
    frame([], 0x0800, ipv4(17, b"w" * 16, 9, frag=185)),
]
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
sock.bind((sys.argv[1], 0))
for _ in range(int(sys.argv[2])):
    for f in frames:
        sock.send(f.ljust(60, b"\0"))
