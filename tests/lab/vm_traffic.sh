# vm_traffic.sh PROTOCOL...: the VM's traffic to the remote host on the VM topology (vm_topology.sh; PORTS
# in the environment), one phase per PROTOCOL, the datapath's flows purged before each (revalidator/purge)
# so that the first packet of each direction goes through the upcall and the rest take the fast path:
#   icmp: the VM pings the remote host 4 times (4 requests, 4 replies),
#   udp:  the VM sends 4 datagrams, each echoed (4 each way),
#   tcp:  tcp_transfer.py: the VM connects, sends 3 x 100 bytes and closes, the remote host closes too.
# After each phase, a line "sent PROTOCOL NETNS:DEV=N ...": how many packets each device sent during the
# phase (the VM's eth0, the host's physical ports, the remote host's ports): the test's exact counts.
. ./common.sh
PORTS=${PORTS:-1}
snap() { # "NETNS:DEV=tx_packets" for every device counted
  for ns in vm sw rh; do case $ns in vm) devs=eth0;; sw) devs=$(seq -f ph%g $PORTS);; rh) devs=$(seq -f eth%g $PORTS);; esac
    ip netns exec $ns sh -c "for d in $(echo $devs); do echo $ns:\$d=\$(cat /sys/class/net/\$d/statistics/tx_packets); done"
  done; }
for proto in "$@"; do
  ip netns exec sw ovs-appctl revalidator/purge >/dev/null
  declare -A before=()
  for c in $(snap); do before[${c%=*}]=${c#*=}; done
  case $proto in
    icmp) ip netns exec vm ping -q -c 4 -i 0.2 10.2.2.2 >/dev/null ;;
    udp) ip netns exec rh python3 udp_echo.py server 6001 4 & server=$!; wait_port rh 6001
         ip netns exec vm python3 udp_echo.py client 10.2.2.2 6001 4; wait $server ;;
    tcp) ip netns exec rh python3 tcp_transfer.py server 5001 & server=$!; wait_port rh 5001
         ip netns exec vm python3 tcp_transfer.py client 10.2.2.2 5001; wait $server ;;
    *) echo "vm_traffic.sh: no protocol $proto" >&2; exit 2 ;;
  esac
  line="sent $proto"
  for c in $(snap); do line+=" ${c%=*}=$((${c#*=} - before[${c%=*}]))"; done
  echo "$line"
done
