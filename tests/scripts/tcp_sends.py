"""tcp_sends.py HOST PORT STEP...: one TCP connection (TCP_NODELAY) to HOST:PORT and one send() per
STEP, 50 ms apart: N sends N bytes; cN sends N bytes corked (TCP_CORK stays on until the next plain
step or the end, so consecutive cN steps leave in one segment). Then closes."""
import socket, sys, time

host, port, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.connect((host, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
corked = False
for step in steps:
    cork = step.startswith("c")
    if cork != corked:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, int(cork))
        corked = cork
    s.sendall(b"x" * int(step.lstrip("c")))
    time.sleep(0.05)
if corked:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
time.sleep(0.3)
s.close()
time.sleep(0.3)
