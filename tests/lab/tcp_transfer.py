"""tcp_transfer.py server PORT [ADDR] | client HOST PORT [SIZE...]: a known TCP transfer for the latency
tests. The server listens on ADDR (default 0.0.0.0; an IPv6 address such as :: listens for IPv6).
The client connects, sends SIZE bytes per send() 0.2 s apart (default 3 x 100: with TCP_NODELAY, one
segment per send) and closes; the server reads until the client closes, then closes too."""
import socket, sys, time

if sys.argv[1] == "server":
    addr = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"
    srv = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, int(sys.argv[2])))
    srv.listen(1)
    conn, _ = srv.accept()
    while conn.recv(4096):
        pass
    conn.close()
else:
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for size in sys.argv[4:] or ["100"] * 3:
        s.sendall(b"x" * int(size))
        time.sleep(0.2)
    s.close()
    time.sleep(0.3)
