# scripts/tcp_connlife.ns with its kprobes attached: one loopback TCP connection of
# 3 send() calls of 10 bytes from python3 to nc, both ends closed.
. ./common.sh
nc -l 127.0.0.1 7001 >/dev/null & wait_port 7001
netscript scripts/tcp_connlife.ns --port 7001 -c "sh -c 'python3 send.py tcp 127.0.0.1 7001 3; sleep 1'" 2>&1
