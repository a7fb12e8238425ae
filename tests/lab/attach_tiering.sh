# The same fentry/fexit probes, once as they are (this kernel loads fentry) and once with --no-fentry
# (refused: kprobe/kretprobe). `probe` names what was attached; each run counts the 25 sends exactly.
. ./common.sh
nc -lk 127.0.0.1 7000 >/dev/null & wait_port 7000
PROG='fentry:tcp_sendmsg /comm == "python3"/ { @[probe] = count(); }
      fexit:tcp_sendmsg /comm == "python3"/ { @[probe] = count(); @sent = sum(retval); }'
for flag in "" --no-fentry; do
  section "run${flag:+ $flag}"
  netscript $flag -e "$PROG" -c "python3 send.py tcp 127.0.0.1 7000 25" 2>&1 || exit
done
