# The hardware-accelerated VLAN tag: a VLAN device on a veth hands its frames to the veth with the
# tag in skb->vlan_tci, not in the frame bytes. 4 pings from ns1 (a1.10) to ns2 (a2.10).
. ./common.sh
modprobe 8021q
veth_pair ns1 ns2
for i in 1 2; do
  ip -n ns$i link add link a$i name a$i.10 type vlan id 10
  ip -n ns$i addr add 10.2.2.$i/24 dev a$i.10; ip -n ns$i link set a$i.10 up
done
ip netns exec ns1 ping -q -c 1 -W 2 10.2.2.2 >/dev/null
netscript -e '
tracepoint:net:net_dev_queue /str(args->name) == "a1"/ {
  $skb = (struct sk_buff *)args->skbaddr;
  @tx[skb_hw_vid($skb), frame_tags(skb_data($skb)), pkt_proto($skb)] = count();
}
tracepoint:net:netif_receive_skb /str(args->name) == "a2"/ {
  $skb = (struct sk_buff *)args->skbaddr;
  @rx[skb_hw_vid($skb), frame_tags(skb_mac($skb)), pkt_proto($skb)] = count();
}' -c "ip netns exec ns1 ping -q -c 4 -i 0.2 10.2.2.2 >/dev/null" 2>&1
