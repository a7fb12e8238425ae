# A bond of three ports as the physical side (vm_topology.sh with PORTS=3: balance-rr bonds both sides, so
# consecutive packets leave and arrive on different ports), and the interface filters that take a bond as
# its ports. vm_network_latency: the VM's traffic (vm_traffic.sh) with --phy-dev listing the three ports,
# then ph1,ph2 only (what goes through ph3 is filtered). ovs_tcp_latency: the host (10.2.2.254 on br0)
# sends to the remote host with --phy-iface ph1,ph2,ph3, then ph1,ph2; ovs_icmp_rtt: the host pings the
# remote host 6 times, the same two ways. Each run prints the packets each port sent (vm_traffic.sh's
# "sent" lines, tx_packets before/after for the host's runs).
PORTS=3
. ./vm_topology.sh
vm_run() { # vm_run SECTION PORTS
  section "$1"
  $NS_SW netscript scripts/vm_network_latency.ns --vm-dev tap0 --phy-dev $2 --src-ip 10.2.2.0/24 -f json \
    -c "env PORTS=$PORTS bash vm_traffic.sh icmp udp" 2>&1
}
vm_run "vm all ports" ph1,ph2,ph3
vm_run "vm two ports" ph1,ph2
tcp_run() { # tcp_run SECTION PORT PORTS
  section "$1"
  $SW ovs-appctl revalidator/purge
  ip netns exec rh python3 tcp_transfer.py server $2 & local server=$!; wait_port rh $2
  tx_packets sw ph1 ph2 ph3 | sed 's/^/before /'
  $NS_SW netscript scripts/ovs_tcp_latency.ns --direction tx --src-ip 10.2.2.254 --dst-ip 10.2.2.2 \
    --dst-port $2 --phy-iface $3 -f json \
    -c "ip netns exec sw python3 tcp_transfer.py client 10.2.2.2 $2 100 100 100 100 100 100" 2>&1
  wait $server
  tx_packets sw ph1 ph2 ph3 | sed 's/^/after /'
}
tcp_run "tcp all ports" 5011 ph1,ph2,ph3
tcp_run "tcp two ports" 5012 "ph1 --phy-iface ph2"
icmp_run() { # icmp_run SECTION PORTS
  section "$1"
  $SW ovs-appctl revalidator/purge
  tx_packets sw ph1 ph2 ph3 | sed 's/^/before /'
  $NS_SW netscript scripts/ovs_icmp_rtt.ns --direction tx --src-ip 10.2.2.254 --dst-ip 10.2.2.2 \
    --phy-iface $2 --disable-kernel-stacks -f json -c "ip netns exec sw ping -q -c 6 -i 0.2 10.2.2.2 >/dev/null" 2>&1
  tx_packets sw ph1 ph2 ph3 | sed 's/^/after /'
}
icmp_run "icmp all ports" ph1,ph2,ph3
icmp_run "icmp two ports" ph1,ph2
section end
