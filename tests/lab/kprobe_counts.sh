# kprobe, kretprobe, fentry and fexit on tcp_sendmsg count exactly the 25 send() calls of a client.
. ./common.sh
nc -lk 127.0.0.1 7000 >/dev/null & wait_port 7000
netscript -e '
kprobe:tcp_sendmsg /comm == "python3"/ { @kprobe = count(); }
kretprobe:tcp_sendmsg /comm == "python3"/ { @kretprobe = count(); }
fentry:tcp_sendmsg /comm == "python3"/ { @fentry = count(); @size = sum(args.size); }
fexit:tcp_sendmsg /comm == "python3"/ { @fexit = count(); @sent = sum(retval); }' \
  -c "python3 send.py tcp 127.0.0.1 7000 25" 2>&1
