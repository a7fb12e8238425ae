"""send.py tcp|udp|bcast HOST PORT N: N send() calls of 10 bytes each on one TCP connection, or N UDP
datagrams (bcast: to a broadcast address). Used by the guest test scripts to make exact traffic."""
import socket, sys

proto, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if proto == "tcp":
    s = socket.create_connection((host, port))
    for _ in range(n):
        s.send(b"0123456789")
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, proto == "bcast")
    for _ in range(n):
        s.sendto(b"0123456789", (host, port))
s.close()
