#!/bin/bash
# Run by `bench/run --parts 7` inside the shared kernel lab (../shared/kernel-lab, Debian mode:
# kprobes, OVS, bpftrace): the per-run cost of the kprobe stages of scripts/kernel_icmp_rtt.ns
# (a veth pair), scripts/ovs_icmp_rtt.ns and scripts/ovs_tcp_latency.ns (the OVS bridge of
# tests/lab/ovs_topology.sh) against
# bpftrace's skb-address equivalents, both tools attached at the same time to the same ping flood;
# and those of scripts/vm_network_latency.ns, a tap "VM" on that bridge pinging across it.
# /mnt/work holds netscript, bpftool, the four scripts, common.sh, ovs_topology.sh and
# tests/scripts/tap_vm.py. Prints
# `BPFTRACE|script|program` and, per kprobe, `ROW|script|tool|function|runs|ns per run` (a tool's
# programs on one function summed: all of them run at each hit), then `DONE`.
set -u
W=/mnt/work
PINGS=${PINGS:-4000}
cp "$W/common.sh" "$W/ovs_topology.sh" .
. ./common.sh
echo 1 > /proc/sys/kernel/bpf_stats_enabled
have() { grep -q " $1\$" /proc/kallsyms; }

# measure LABEL BPFTRACE_PROGRAM TRAFFIC NETSCRIPT_COMMAND...
measure() {
  local label=$1 bt=$2 traffic=$3; shift 3
  echo "BPFTRACE|$label|$bt"
  "$@" > ns.out 2>&1 &
  local nspid=$!
  bpftrace -e "$bt" > bt.out 2>&1 &
  local btpid=$!
  # Attached when bpftrace says so (it compiles with LLVM under emulation: slow) and netscript's
  # kprobes are there.
  for _ in $(seq 600); do
    grep -q Attaching bt.out && $W/bpftool perf show -j | grep -q "\"pid\":$nspid," && break
    sleep 0.5
  done
  sleep 2
  $W/bpftool prog show -j > before.json
  $W/bpftool perf show -j > perf.json
  eval "$traffic" | tail -2
  $W/bpftool prog show -j > after.json
  kill -INT $nspid $btpid; wait $nspid $btpid
  python3 - "$label" "$nspid" "$btpid" <<'EOF'
import json, sys
label, ns_pid, bt_pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
before = {p["id"]: p for p in json.load(open("before.json"))}
after = {p["id"]: p for p in json.load(open("after.json"))}
cost = {}
for link in json.load(open("perf.json")):
    tool = {ns_pid: "netscript", bt_pid: "bpftrace"}.get(link["pid"])
    i = link["prog_id"]
    if tool is None or i not in before or i not in after:
        continue
    runs = after[i].get("run_cnt", 0) - before[i].get("run_cnt", 0)
    ns = after[i].get("run_time_ns", 0) - before[i].get("run_time_ns", 0)
    if runs > 0:
        total, most = cost.get((tool, link["func"]), (0.0, 0))
        cost[(tool, link["func"])] = (total + ns / runs, max(most, runs))
for (tool, func), (per_run, runs) in sorted(cost.items()):
    print(f"ROW|{label}|{tool}|{func}|{runs}|{per_run:.0f}")
EOF
  grep 'started' ns.out
}

# kernel_icmp_rtt on a veth pair: the request from its first IP stage to the device, the reply from
# the device to icmp_rcv (a reply is another skb: it cannot be chained by address).
veth_pair ns1 ns2 10.3.3.1 10.3.3.2
ip netns exec ns1 ping -q -c 1 -W 2 10.3.3.2 >/dev/null
BT=""
for f in ip_send_skb:arg1 ip_output:arg2; do
  have "${f%%:*}" && BT+="kprobe:${f%%:*} { @req[${f##*:}] = nsecs; } "
done
BT+='kprobe:__dev_queue_xmit /@req[arg0]/ { @tx = hist(nsecs - @req[arg0]); delete(@req[arg0]); } '
BT+='kprobe:__netif_receive_skb { @rep[arg0] = nsecs; } '
BT+='kprobe:ip_rcv /@rep[arg0]/ { @mid[arg0] = nsecs; } '
BT+='kprobe:icmp_rcv /@rep[arg0]/ { @rx = hist(nsecs - @rep[arg0]); delete(@rep[arg0]); delete(@mid[arg0]); }'
measure kernel_icmp_rtt "$BT" "ip netns exec ns1 ping -q -f -c $PINGS 10.3.3.2" \
  ip netns exec ns1 $W/netscript --no-fentry $W/kernel_icmp_rtt.ns --src-ip 10.3.3.1 --dst-ip 10.3.3.2 \
  --interface a1 --disable-kernel-stacks --mode histogram
for n in ns1 ns2; do ip netns del $n; done

# The OVS bridge: namespace sw (10.1.1.254 on the internal port br0) and ns2 behind the "physical"
# port a2p. bpftrace's chain marks the skb at the first function either half of the path reaches
# and at every one after it, and measures at the last ($1: icmp_rcv or tcp_v4_rcv).
. ./ovs_topology.sh > /dev/null
ovs_chain() {
  local bt='kprobe:ip_output { @s[arg2] = nsecs; } '
  bt+='kprobe:__netif_receive_skb { @s[arg0] = nsecs; } '
  bt+='kprobe:internal_dev_xmit /@s[arg0]/ { @m[arg0] = nsecs; } '
  bt+='kprobe:netdev_frame_hook /@s[*(uint64 *)arg0]/ { @m[*(uint64 *)arg0] = nsecs; } '
  bt+='kprobe:ovs_dp_process_packet /@s[arg0]/ { @m[arg0] = nsecs; } '
  bt+='kprobe:ovs_dp_upcall /@s[arg1]/ { @m[arg1] = nsecs; } '
  bt+='kprobe:ovs_flow_key_extract_userspace /@s[arg2]/ { @m[arg2] = nsecs; } '
  bt+='kprobe:ovs_vport_send /@s[arg1]/ { @m[arg1] = nsecs; } '
  bt+='kprobe:__dev_queue_xmit /@s[arg0]/ { @tx = hist(nsecs - @s[arg0]); delete(@s[arg0]); delete(@m[arg0]); } '
  bt+="kprobe:$1 /@s[arg0]/ { @rx = hist(nsecs - @s[arg0]); delete(@s[arg0]); delete(@m[arg0]); }"
  echo "$bt"
}

# ovs_icmp_rtt: sw pings ns2.
ip netns exec sw ping -q -c 2 10.1.1.2 > /dev/null
measure ovs_icmp_rtt "$(ovs_chain icmp_rcv)" "ip netns exec sw ping -q -f -c $PINGS 10.1.1.2" \
  nsenter --net=/run/netns/sw $W/netscript --no-fentry $W/ovs_icmp_rtt.ns --src-ip 10.1.1.254 \
  --dst-ip 10.1.1.2 --phy-iface1 a2p --disable-kernel-stacks --mode histogram

# ovs_tcp_latency (tx): a client in sw sends $PINGS 100-byte segments (TCP_NODELAY) to ns2, one
# send() each. netscript's send stage (recalled at ip_output) against bpftrace timing each socket's
# last send to its next ip_output (skb->sk at offset 24 of struct sk_buff).
SEND_BT='kprobe:tcp_sendmsg { @snd[arg0] = nsecs; } '
SEND_BT+='kprobe:ip_output { $sk = *(uint64 *)(arg2 + 24); if (@snd[$sk]) { @send = hist(nsecs - @snd[$sk]); delete(@snd[$sk]); } } '
ip netns exec ns2 python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5001)); s.listen(1); c, _ = s.accept()
while c.recv(65536): pass' &
SINK=$!
wait_port ns2 5001
SEND="import socket, time
c = socket.create_connection((\"10.1.1.2\", 5001)); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range($PINGS): c.send(b\"x\" * 100); time.sleep(0.0002)
c.close(); print(\"sent $PINGS segments\")"
measure ovs_tcp_latency "$SEND_BT$(ovs_chain tcp_v4_rcv)" "ip netns exec sw python3 -c \"\$SEND\"" \
  nsenter --net=/run/netns/sw $W/netscript --no-fentry $W/ovs_tcp_latency.ns --src-ip 10.1.1.254 \
  --dst-ip 10.1.1.2 --dst-port 5001 --phy-iface1 a2p --mode histogram
wait $SINK

# vm_network_latency: a "VM" on the tap port vm0 of the bridge (tap_vm.py holds it, as qemu would)
# pings ns2 behind the "physical" port a2p: each request on the tx path (vm0 -> a2p), each reply
# on the rx path (a2p -> vm0, ending at tun_net_xmit).
$SW ip tuntap add mode tap name vm0; $SW ip link set vm0 up; $SW ovs-vsctl add-port br0 vm0
neigh ns2 9 09 a2
measure vm_network_latency "$(ovs_chain tun_net_xmit)" \
  "ip netns exec sw python3 $W/tap_vm.py vm0 02:00:00:00:00:09 10.1.1.9 02:00:00:00:00:02 10.1.1.2 $PINGS && echo '$PINGS echoes'" \
  nsenter --net=/run/netns/sw $W/netscript --no-fentry $W/vm_network_latency.ns --vm-dev vm0 \
  --phy-dev a2p --protocol icmp --mode histogram
echo DONE
