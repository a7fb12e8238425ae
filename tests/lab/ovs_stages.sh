# netscript kprobes on every OVS stage while ICMP, UDP (unicast and broadcast) and TCP cross the bridge.
. ./ovs_topology.sh
ip netns exec ns2 nc -ul 9000 >/dev/null & wait_port ns2 9000
ip netns exec sw nc -lk 10.1.1.254 5001 >/dev/null & wait_port sw 5001
cat > traffic.sh <<'T'
ip netns exec ns1 ping -q -c 5 -i 0.2 10.1.1.2 >/dev/null
ip netns exec ns1 python3 send.py udp 10.1.1.2 9000 7
ip netns exec ns1 python3 send.py bcast 10.1.1.255 9001 1
ip netns exec ns1 python3 send.py tcp 10.1.1.254 5001 20
sleep 0.5
T
netscript -e '
kprobe:netdev_frame_hook { @hook[pkt_proto((struct sk_buff *)*(uint64 *)arg0)] = count(); }
kprobe:ovs_dp_process_packet { @dp[pkt_proto((struct sk_buff *)arg0)] = count(); }
kprobe:ovs_dp_upcall { @upcall[pkt_proto((struct sk_buff *)arg1)] = count(); }
kprobe:ovs_flow_key_extract_userspace { @[probe] = count(); }
kprobe:ovs_vport_send { @send[pkt_proto((struct sk_buff *)arg1)] = count(); }
kprobe:internal_dev_xmit { @internal_xmit[pkt_proto((struct sk_buff *)arg0)] = count(); }
kprobe:tun_net_xmit { @tap_xmit[pkt_proto((struct sk_buff *)arg0)] = count(); }' -c "bash traffic.sh" 2>&1
