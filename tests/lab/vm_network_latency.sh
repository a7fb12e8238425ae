# scripts/vm_network_latency.ns on the VM topology (vm_topology.sh, one physical port ph1): the VM pings the
# remote host, exchanges UDP datagrams and a TCP connection with it (vm_traffic.sh), the datapath's flows
# purged before each protocol, so that its first packet each way is upcalled and the rest take the fast path.
# Both directions at once: tx (tap0 -> OVS -> ph1), rx (ph1 -> OVS -> tap0), per packet and in histograms
# (--mode both, printed at exit), in JSON.
. ./vm_topology.sh
section run
$NS_SW netscript scripts/vm_network_latency.ns --vm-dev tap0 --phy-dev ph1 --src-ip 10.2.2.0/24 --mode both \
  --interval 0 -f json -c "env PORTS=$PORTS bash vm_traffic.sh icmp udp tcp" 2>&1
section end
