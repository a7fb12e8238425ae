# ovs_path.ns follows 5 ICMP echo requests from ns1 to ns2 and their 5 replies across the datapath.
. ./ovs_topology.sh
netscript ovs_path.ns -f json -c "ip netns exec ns1 ping -q -c 5 -i 0.3 10.1.1.2 >/dev/null" 2>&1
