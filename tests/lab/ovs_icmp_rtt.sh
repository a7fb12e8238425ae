# scripts/ovs_icmp_rtt.ns on the OVS topology (ovs_topology.sh). The "host" is namespace sw, whose address
# 10.1.1.254 sits on the OVS internal port br0; the "physical NIC" is the veth port a2p, towards ns2
# (10.1.1.2). tx: sw pings ns2 (request: ip_output -> internal_dev_xmit -> datapath -> vport send ->
# dev_queue_xmit on a2p; reply: netif_receive on a2p -> netdev_frame_hook -> datapath -> vport send to br0
# -> icmp_rcv); rx: ns2 pings sw (the same stages, request and reply swapped). The datapath's flows are
# purged before each run (revalidator/purge, which also forgets ovs-vswitchd's record of them, unlike
# dpctl/del-flows), so the first echo of each direction goes through the upcall.
. ./ovs_topology.sh
SW="ip netns exec sw"
# netscript runs in sw's network namespace (to resolve a2p) without ip netns exec's fresh /sys, which
# would hide tracefs.
NS_SW="nsenter --net=/run/netns/sw"
run() { # run SECTION DIRECTION PINGER TARGET [netscript options]
  $SW ovs-appctl revalidator/purge
  local d=$2 from=$3 to=$4
  section "$1"; shift 4
  $NS_SW netscript scripts/ovs_icmp_rtt.ns --direction $d --src-ip 10.1.1.254 --dst-ip 10.1.1.2 \
    --phy-iface1 a2p "$@" -c "ip netns exec $from ping -q -c 5 -i 0.3 $to >/dev/null" 2>&1
}
run tx tx sw 10.1.1.2 -f json --disable-kernel-stacks
run rx rx ns2 10.1.1.254 -f json --disable-kernel-stacks
run text tx sw 10.1.1.2
section "end"
