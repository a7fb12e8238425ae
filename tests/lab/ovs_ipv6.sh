# IPv6 through OVS (ovs_topology.sh): sw holds fd00::fe on the internal port br0, ns2 fd00::2 on a2,
# behind the "physical NIC" a2p; static neighbours, no DAD and no link-local addresses, so the only
# packets are the test's. ovs_icmp_rtt.ns on ICMPv6 echo (5 pings each way), ovs_tcp_latency.ns on
# TCP over IPv6: tx 3 x 100 bytes then 200000 in one send (GSO), rx 3 x 100 bytes.
. ./ovs_topology.sh
ipv6_on() { # NS DEV ADDR: IPv6 on DEV in namespace NS with ADDR/64 only
  ip -n "$1" link set "$2" addrgenmode none
  ip netns exec "$1" sysctl -qw net.ipv6.conf."$2".accept_dad=0 net.ipv6.conf."$2".disable_ipv6=0
  ip -n "$1" addr add "$3/64" dev "$2" nodad
}
ipv6_on sw br0 fd00::fe; ipv6_on ns2 a2 fd00::2
ip -n sw neigh replace fd00::2 lladdr 02:00:00:00:00:02 dev br0 nud permanent
ip -n ns2 neigh replace fd00::fe lladdr 02:00:00:00:00:fe dev a2 nud permanent
ovs_icmp icmp6_tx tx sw fd00::2 fd00::fe fd00::2 -f json --disable-kernel-stacks
ovs_icmp icmp6_rx rx ns2 fd00::fe fd00::fe fd00::2 -f json --disable-kernel-stacks
ovs_icmp icmp6_text tx sw fd00::2 fd00::fe fd00::2 --disable-kernel-stacks
ovs_tcp tcp6_tx tx fd00::fe fd00::2 5001 ns2 sw 100 100 100 200000
ovs_tcp tcp6_rx rx fd00::2 fd00::fe 5002 sw ns2
section "end"
