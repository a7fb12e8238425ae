# Sourced by the OVS guest scripts: an ovs-vswitchd NORMAL bridge br0 in namespace sw, with
#   - veth a1p <-> a1 in namespace ns1 (10.1.1.1) and a2p <-> a2 in ns2 (10.1.1.2),
#   - its internal port br0 carrying 10.1.1.254 (in sw),
#   - a tap port tap0 held open by a python3 reader (so it has carrier and OVS can transmit to it).
# IPv6 is off and every neighbour is static, so the only packets are the ones the test sends.
. ./common.sh
modprobe openvswitch; modprobe veth; modprobe tun
for n in sw ns1 ns2; do ip netns add $n
  ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n $n link set lo up; done
SW="ip netns exec sw"
for i in 1 2; do
  ip link add a$i address 02:00:00:00:00:0$i netns ns$i type veth peer name a${i}p netns sw
  ip -n ns$i addr add 10.1.1.$i/24 dev a$i; ip -n ns$i link set a$i up; ip -n sw link set a${i}p up
done
ovs_start sw br0 -- set bridge br0 other-config:hwaddr=02:00:00:00:00:fe -- add-port br0 a1p -- add-port br0 a2p
$SW python3 -c '
import fcntl, os, struct
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"tap0", 0x0002 | 0x1000))  # TUNSETIFF: IFF_TAP|IFF_NO_PI
open("/tmp/tap.ready", "w").close()
while os.read(fd, 2048): pass' &
for _ in $(seq 50); do [ -f /tmp/tap.ready ] && break; sleep 0.1; done
$SW ip link set tap0 up; $SW ovs-vsctl add-port br0 tap0
$SW ip addr add 10.1.1.254/24 dev br0; $SW ip link set br0 up
neigh() { ip -n $1 neigh replace 10.1.1.$2 lladdr 02:00:00:00:00:$3 dev $4 nud permanent; }
neigh ns1 2 02 a1; neigh ns1 254 fe a1; neigh ns2 1 01 a2; neigh ns2 254 fe a2; neigh sw 1 01 br0; neigh sw 2 02 br0

# For the topology tests (ovs_ipv6.sh, ovs_vlan.sh): netscript runs in sw's network namespace (to
# resolve a2p) without ip netns exec's fresh /sys, which would hide tracefs; the datapath's flows are
# purged before each run (revalidator/purge), so the first packets go through the upcall.
NS_SW="nsenter --net=/run/netns/sw"
# retransmitted_segments NS: the TCP segments namespace NS has retransmitted since it was made.
retransmitted_segments() { ip netns exec "$1" nstat -asz TcpRetransSegs | awk '$1 == "TcpRetransSegs" { print $2 }'; }
# ovs_icmp SECTION DIRECTION PINGER TARGET LOCAL REMOTE [netscript options]: scripts/ovs_icmp_rtt.ns
# (this host LOCAL, the remote REMOTE, the NIC a2p) over 5 pings from namespace PINGER to TARGET.
ovs_icmp() {
  ip netns exec sw ovs-appctl revalidator/purge
  section "$1"
  $NS_SW netscript scripts/ovs_icmp_rtt.ns --direction "$2" --src-ip "$5" --dst-ip "$6" --phy-iface a2p \
    "${@:7}" -c "ip netns exec $3 ping -q -c 5 -i 0.3 $4 >/dev/null" 2>&1
}
# ovs_tcp SECTION DIRECTION SRC DST PORT SERVER_NS CLIENT_NS [SIZE...]: scripts/ovs_tcp_latency.ns (JSON)
# on a tcp_transfer.py client in CLIENT_NS sending SIZE bytes per send to SRC -> DST:PORT, then the
# segments the client's namespace retransmitted meanwhile (a slow guest's late ACK can draw a tail
# loss probe or a timeout, and a retransmitted segment travels the path again).
ovs_tcp() {
  ip netns exec sw ovs-appctl revalidator/purge
  local bind=0.0.0.0; case "$4" in *:*) bind=::;; esac
  ip netns exec "$6" python3 tcp_transfer.py server "$5" $bind & local server=$!; wait_port "$6" "$5"
  local retransmitted; retransmitted=$(retransmitted_segments "$7")
  section "$1"
  $NS_SW netscript scripts/ovs_tcp_latency.ns --direction "$2" --src-ip "$3" --dst-ip "$4" --dst-port "$5" \
    --phy-iface a2p -f json -c "ip netns exec $7 python3 tcp_transfer.py client $4 $5 ${*:8}" 2>&1
  echo "retransmitted segments: $(( $(retransmitted_segments "$7") - retransmitted ))"
  # The server ends when the client closes; if netscript failed, no client came: stop it.
  for _ in $(seq 50); do kill -0 $server 2>/dev/null || break; sleep 0.1; done
  kill $server 2>/dev/null; wait $server
}
