#!/bin/bash
# Run by `bench/run --parts 7` inside the shared kernel lab (../shared/kernel-lab, Debian mode:
# kprobes, bpftrace): the per-run cost of scripts/kernel_icmp_rtt.ns's kprobe stages against
# bpftrace's skb-address equivalent, both attached at the same time to the same ping flood over
# a veth pair. /mnt/work holds netscript, bpftool and kernel_icmp_rtt.ns. Prints one line per
# program: `ROW|tool|function|runs|ns per run`, then `DONE`.
set -u
W=/mnt/work
PINGS=${PINGS:-4000}
modprobe veth
for n in ns1 ns2; do ip netns add $n; ip -n $n link set lo up; done
ip link add a1 netns ns1 type veth peer name a2 netns ns2
ip -n ns1 addr add 10.3.3.1/24 dev a1; ip -n ns2 addr add 10.3.3.2/24 dev a2
ip -n ns1 link set a1 up; ip -n ns2 link set a2 up
ip netns exec ns1 ping -q -c 1 -W 2 10.3.3.2 >/dev/null
echo 1 > /proc/sys/kernel/bpf_stats_enabled

# The same stages keyed by skb address: the request from its first IP stage to the device, the
# reply from the device to icmp_rcv (a reply is another skb, so the round trip cannot be chained
# by address). Functions this kernel does not have are left out, as netscript skips them.
have() { grep -q " $1\$" /proc/kallsyms; }
BT=""
for f in ip_send_skb:arg1 ip_output:arg2; do
  have "${f%%:*}" && BT+="kprobe:${f%%:*} { @req[${f##*:}] = nsecs; } "
done
BT+='kprobe:__dev_queue_xmit /@req[arg0]/ { @tx = hist(nsecs - @req[arg0]); delete(@req[arg0]); } '
BT+='kprobe:__netif_receive_skb { @rep[arg0] = nsecs; } '
BT+='kprobe:ip_rcv /@rep[arg0]/ { @mid[arg0] = nsecs; } '
BT+='kprobe:icmp_rcv /@rep[arg0]/ { @rx = hist(nsecs - @rep[arg0]); delete(@rep[arg0]); delete(@mid[arg0]); }'
echo "BPFTRACE|$BT"

ip netns exec ns1 $W/netscript --no-fentry $W/kernel_icmp_rtt.ns --src-ip 10.3.3.1 --dst-ip 10.3.3.2 \
  --interface a1 --disable-kernel-stacks --mode histogram > ns.out 2>&1 &
NSPID=$!
bpftrace -e "$BT" > bt.out 2>&1 &
BTPID=$!
# Attached when both have their kprobes (bpftrace compiles with LLVM under emulation: slow).
for _ in $(seq 600); do
  n=$($W/bpftool perf show 2>/dev/null | grep -c kprobe)
  grep -q Attaching bt.out && [ "$n" -ge 8 ] && break
  sleep 0.5
done
sleep 2
$W/bpftool prog show -j > before.json
$W/bpftool perf show -j > perf.json
ip netns exec ns1 ping -q -f -c "$PINGS" 10.3.3.2 | tail -2
$W/bpftool prog show -j > after.json
kill -INT $NSPID $BTPID; wait
python3 - "$NSPID" "$BTPID" <<'EOF'
import json, sys
ns_pid, bt_pid = int(sys.argv[1]), int(sys.argv[2])
before = {p["id"]: p for p in json.load(open("before.json"))}
after = {p["id"]: p for p in json.load(open("after.json"))}
perf = json.load(open("perf.json"))
func = {p["prog_id"]: p.get("func", "?") for p in perf}
# A program belongs to the process holding its kprobe (netscript runs under `ip netns exec`,
# which execs it: same pid).
owner = {p["prog_id"]: {ns_pid: "netscript", bt_pid: "bpftrace"}.get(p["pid"]) for p in perf}
for i, p in sorted(after.items()):
    tool = owner.get(i)
    if tool is None or i not in before or i not in func:
        continue
    runs = p.get("run_cnt", 0) - before[i].get("run_cnt", 0)
    ns = p.get("run_time_ns", 0) - before[i].get("run_time_ns", 0)
    if runs > 0:
        print(f"ROW|{tool}|{func[i]}|{runs}|{ns / runs:.0f}")
EOF
grep -v '^\s*\[\|^$\|@' ns.out | tail -3
echo DONE
