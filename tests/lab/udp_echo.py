"""udp_echo.py server PORT N | client HOST PORT N: N UDP datagrams of 10 bytes, each echoed by the server
before the client sends the next (a known exchange for the latency tests: N datagrams each way)."""
import socket, sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
if sys.argv[1] == "server":
    s.bind(("0.0.0.0", int(sys.argv[2])))
    for _ in range(int(sys.argv[3])):
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)
else:
    for i in range(int(sys.argv[4])):
        s.sendto(b"%010d" % i, (sys.argv[2], int(sys.argv[3])))
        s.recvfrom(2048)
