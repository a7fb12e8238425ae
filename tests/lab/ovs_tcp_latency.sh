# scripts/ovs_tcp_latency.ns on the OVS topology (ovs_topology.sh). The "host" is namespace sw, whose
# address 10.1.1.254 sits on the OVS internal port br0; the "physical NIC" is the veth port a2p, towards
# ns2 (10.1.1.2). tx: a client in sw sends 3 x 100 bytes, then 200000 bytes in one send(), to a server in
# ns2 (tcp_sendmsg -> ip_output -> internal_dev_xmit -> datapath -> vport send -> dev_queue_xmit on a2p);
# rx: a client in ns2 sends 3 x 100 bytes to a server in sw
# (netif_receive on a2p -> netdev_frame_hook -> datapath -> vport send to br0 -> tcp_v4_rcv). The
# datapath's flows are purged before each run (revalidator/purge, which also forgets ovs-vswitchd's record
# of them, unlike dpctl/del-flows), so the first segments go through the upcall.
. ./ovs_topology.sh
SW="ip netns exec sw"
# netscript runs in sw's network namespace (to resolve a2p) without ip netns exec's fresh /sys, which
# would hide tracefs.
NS_SW="nsenter --net=/run/netns/sw"
run() { # run DIRECTION SRC DST PORT SERVER_NS CLIENT_NS [SIZE...]
  $SW ovs-appctl revalidator/purge
  ip netns exec $5 python3 tcp_transfer.py server $4 & local server=$!; wait_port $5 $4
  section "$1"
  $NS_SW netscript scripts/ovs_tcp_latency.ns --direction $1 --src-ip $2 --dst-ip $3 --dst-port $4 \
    --phy-iface1 a2p -f json -c "ip netns exec $6 python3 tcp_transfer.py client $3 $4 ${*:7}" 2>&1
  wait $server
}
run tx 10.1.1.254 10.1.1.2 5001 ns2 sw 100 100 100 200000
run rx 10.1.1.2 10.1.1.254 5002 sw ns2
section "text"
$SW ovs-appctl revalidator/purge
ip netns exec ns2 python3 tcp_transfer.py server 5003 & SERVER=$!; wait_port ns2 5003
$NS_SW netscript scripts/ovs_tcp_latency.ns --src-ip 10.1.1.254 --dst-ip 10.1.1.2 --dst-port 5003 \
  --phy-iface1 a2p --mode both -c "ip netns exec sw python3 tcp_transfer.py client 10.1.1.2 5003" 2>&1
wait $SERVER
section "end"
