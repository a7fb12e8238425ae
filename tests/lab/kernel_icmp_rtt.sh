# scripts/kernel_icmp_rtt.ns with kprobes: all 6 stages of every round trip. ns1 (10.3.3.1) and ns2
# (10.3.3.2) on a veth pair; measured in ns1: tx (ns1 pings ns2 3 times), then rx (ns2 pings ns1 3 times).
. ./common.sh
veth_pair ns1 ns2 10.3.3.1 10.3.3.2
ip netns exec ns1 ping -q -c 1 -W 2 10.3.3.2 >/dev/null
RTT="netscript scripts/kernel_icmp_rtt.ns --src-ip 10.3.3.1 --dst-ip 10.3.3.2 --interface a1 --disable-kernel-stacks"
section tx
ip netns exec ns1 $RTT -f json -c "ping -q -c 3 -i 0.2 10.3.3.2 >/dev/null" 2>&1
section rx
ip netns exec ns1 $RTT --direction rx -f json -c "ip netns exec ns2 ping -q -c 3 -i 0.2 10.3.3.1 >/dev/null" 2>&1
section text
ip netns exec ns1 $RTT -c "ping -q -c 1 10.3.3.2 >/dev/null" 2>&1
