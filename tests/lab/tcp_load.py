"""tcp_load.py: TCP load for tcp_metrics.sh.
  sink PORT                  accept one connection, read it until the client shuts its side down, close
  bulk HOST PORT BYTES       send BYTES, shut the sending side down, wait for the server's close: by then
                             every byte and the FIN are acknowledged, nothing is left to retransmit
  trickle HOST PORT N        like bulk, but N sends of 100 bytes 50 ms apart: each the tail of its flight,
                             so each one lost is a tail loss probe
  listen PORT                listen with backlog 1 and never accept (until killed)
  connect HOST PORT N SECS   N connects 0.1 s apart (non-blocking), wait SECS, then close them all with
                             an RST (SO_LINGER 0: no FIN left to retransmit)"""
import socket, struct, sys, time

mode = sys.argv[1]
if mode in ("sink", "listen"):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", int(sys.argv[2])))
    srv.listen(1)
    if mode == "listen":
        while True:
            time.sleep(60)
    conn, _ = srv.accept()
    while conn.recv(65536):
        pass
    conn.close()
elif mode in ("bulk", "trickle"):
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])))
    if mode == "bulk":
        s.sendall(b"x" * int(sys.argv[4]))
    for _ in range(int(sys.argv[4]) if mode == "trickle" else 0):
        s.sendall(b"x" * 100)
        time.sleep(0.05)
    s.shutdown(socket.SHUT_WR)
    while s.recv(4096):
        pass
    s.close()
else:
    socks = []
    for _ in range(int(sys.argv[4])):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((sys.argv[2], int(sys.argv[3])))
        socks.append(s)
        time.sleep(0.1)
    time.sleep(float(sys.argv[5]))
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
