# VLANs on the OVS path (ovs_topology.sh). Access: br0 is an 802.1Q access port of VLAN 10 (NORMAL
# switching), a2p a trunk, ns2 holds 10.1.1.2 on a2.10, so OVS pushes the tag towards a2p and pops it
# towards br0 (the tag travels in skb->vlan_tci). QinQ: OpenFlow rules push 802.1Q 10 then 802.1ad
# 100 from br0 to a2p and pop both the other way; ns2 holds 10.1.1.2 on a2.100.10 (a2.100: 802.1ad),
# so frames on a2p carry the outer tag in skb->vlan_tci and the inner one in their bytes. On each:
# ovs_icmp_rtt.ns tx (5 pings: the requests tagged on a2p's transmit, the replies on its receive) and
# ovs_tcp_latency.ns tx (3 x 100 bytes, then 200000 in one send: GSO).
. ./ovs_topology.sh
modprobe 8021q
SW="ip netns exec sw"
remote_on() { # DEV: ns2's address and neighbour on DEV instead of a2
  ip -n ns2 addr flush dev a2; ip -n ns2 addr add 10.1.1.2/24 dev "$1"; ip -n ns2 link set "$1" up
  ip -n ns2 neigh replace 10.1.1.254 lladdr 02:00:00:00:00:fe dev "$1" nud permanent
}
$SW ovs-vsctl set port br0 tag=10
ip -n ns2 link add link a2 name a2.10 type vlan id 10; remote_on a2.10
ovs_icmp access_icmp tx sw 10.1.1.2 10.1.1.254 10.1.1.2 -f json --disable-kernel-stacks
ovs_tcp access_tcp tx 10.1.1.254 10.1.1.2 5001 ns2 sw 100 100 100 200000
$SW ovs-vsctl remove port br0 tag 10 -- set Open_vSwitch . other_config:vlan-limit=2 \
  -- set bridge br0 protocols=OpenFlow10,OpenFlow13
# OpenFlow 1.3 for push_vlan; the double pop only in OpenFlow 1.0 (1.3 cannot match the inner tag).
$SW ovs-ofctl del-flows br0
$SW ovs-ofctl -O OpenFlow13 add-flow br0 \
  "in_port=LOCAL actions=push_vlan:0x8100,set_field:4106->vlan_vid,push_vlan:0x88a8,set_field:4196->vlan_vid,output:a2p" || exit 1
$SW ovs-ofctl add-flow br0 "in_port=a2p,dl_vlan=100 actions=pop_vlan,pop_vlan,LOCAL" || exit 1
ip -n ns2 link del a2.10
# The trunk carries 4 bytes more than the hosts' 1500-byte MTU: OVS's MTU check at the vport counts
# one tag, so on a 1500-byte a2p it drops every full-size doubly tagged segment.
ip -n sw link set a2p mtu 1504; ip -n ns2 link set a2 mtu 1504
ip -n ns2 link add link a2 name a2.100 type vlan protocol 802.1ad id 100; ip -n ns2 link set a2.100 up
ip -n ns2 link add link a2.100 name a2.100.10 mtu 1500 type vlan id 10; remote_on a2.100.10
ovs_icmp qinq_icmp tx sw 10.1.1.2 10.1.1.254 10.1.1.2 -f json --disable-kernel-stacks
ovs_tcp qinq_tcp tx 10.1.1.254 10.1.1.2 5003 ns2 sw 100 100 100 200000
section "end"
