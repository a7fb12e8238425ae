# scripts/skb_path_latency.ns and scripts/xdp_packet_log.ns on a veth pair: ns1 (10.4.4.1) - ns2 (10.4.4.2).
# skb_path: 5 pings and 7 UDP datagrams from ns1, detail then histogram mode; xdp: on a2 (ns2's end),
# 6 UDP datagrams to the logged port 9999 and 4 to 8888; then whether an XDP program is left on a2.
. ./common.sh
veth_pair ns1 ns2 10.4.4.1 10.4.4.2
ip netns exec ns1 ping -q -c 1 -W 2 10.4.4.2 >/dev/null
TRAFFIC="ip netns exec ns1 sh -c 'ping -q -c 5 -i 0.2 10.4.4.2 >/dev/null; python3 send.py udp 10.4.4.2 9999 7'"
for mode in detail histogram; do
  section "skb_path $mode"
  netscript scripts/skb_path_latency.ns --src-ip 10.4.4.1 --mode $mode -f json -c "$TRAFFIC" 2>&1
done
section xdp
ip netns exec ns2 netscript scripts/xdp_packet_log.ns --dev a2 --port 9999 -f json \
  -c "ip netns exec ns1 sh -c 'python3 send.py udp 10.4.4.2 9999 6; python3 send.py udp 10.4.4.2 8888 4'" 2>&1
section after
ip -n ns2 link show a2
