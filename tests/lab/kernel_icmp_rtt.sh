# scripts/kernel_icmp_rtt.ns with kprobes: all 6 stages of every round trip. ns1 (10.3.3.1) and ns2
# (10.3.3.2) on a veth pair; measured in ns1: tx (ns1 pings ns2 3 times), then rx (ns2 pings ns1 3 times).
. ./common.sh
modprobe veth
for n in ns1 ns2; do ip netns add $n; ip -n $n link set lo up; done
ip link add a1 netns ns1 type veth peer name a2 netns ns2
ip -n ns1 addr add 10.3.3.1/24 dev a1; ip -n ns2 addr add 10.3.3.2/24 dev a2
ip -n ns1 link set a1 up; ip -n ns2 link set a2 up
ip netns exec ns1 ping -q -c 1 -W 2 10.3.3.2 >/dev/null
RTT="netscript scripts/kernel_icmp_rtt.ns --src-ip 10.3.3.1 --dst-ip 10.3.3.2 --interface a1 --disable-kernel-stacks"
section tx
ip netns exec ns1 $RTT -f json -c "ping -q -c 3 -i 0.2 10.3.3.2 >/dev/null" 2>&1
section rx
ip netns exec ns1 $RTT --direction rx -f json -c "ip netns exec ns2 ping -q -c 3 -i 0.2 10.3.3.1 >/dev/null" 2>&1
section text
ip netns exec ns1 $RTT -c "ping -q -c 1 10.3.3.2 >/dev/null" 2>&1
