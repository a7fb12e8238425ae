# Sourced by the VM guest scripts (vm_network_latency.sh, vm_bond.sh): a KVM host in miniature.
#   - namespace sw is the host: an ovs-vswitchd NORMAL bridge br0 (internal port 10.2.2.254),
#   - the VM is namespace vm (eth0, 10.2.2.1, 02:00:00:00:02:01) behind tap port tap0 of br0, joined to it
#     by tap_vm.py as qemu joins a guest's virtio NIC to its tap device,
#   - the "physical NIC" is veth ph1 (a port of br0) to namespace rh, the remote host (10.2.2.2 on eth1)
#     or, with PORTS=3, a Linux balance-rr bond0 of veths ph1 ph2 ph3 (the port of br0) to a bond0 of
#     eth1 eth2 eth3 in rh: round robin puts consecutive packets on different ports, both ways.
# IPv6 is off and every neighbour is static, so the only packets are the ones the test sends. Every veth has
# an index of its own (101.., 111..): interface filters compare ifindexes, which are per namespace, and the
# VM's eth0 must not share one with tap0 or a physical port (checked below).
. ./common.sh
PORTS=${PORTS:-1}
modprobe veth; modprobe tun; modprobe bonding max_bonds=0
for n in sw vm rh; do ip netns add $n
  ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n $n link set lo up; done
SW="ip netns exec sw"
# netscript runs in sw's network namespace (to resolve the device names) without ip netns exec's fresh
# /sys, which would hide tracefs.
NS_SW="nsenter --net=/run/netns/sw"
for i in $(seq $PORTS); do
  ip link add ph$i index $((100 + i)) netns sw type veth peer name eth$i index $((110 + i)) netns rh
done
if [ "$PORTS" = 1 ]; then PHY=ph1 RH=eth1; else
  PHY=bond0 RH=bond0
  for n in sw rh; do ip -n $n link add bond0 type bond mode balance-rr miimon 100; done
  for i in $(seq $PORTS); do ip -n sw link set ph$i master bond0; ip -n rh link set eth$i master bond0; done
fi
for i in $(seq $PORTS); do ip -n sw link set ph$i up; ip -n rh link set eth$i up; done
ip -n sw link set $PHY up
ip -n rh link set $RH address 02:00:00:00:02:02; ip -n rh addr add 10.2.2.2/24 dev $RH; ip -n rh link set $RH up
ovs_start sw br0 -- set bridge br0 other-config:hwaddr=02:00:00:00:02:fe -- add-port br0 $PHY
$SW python3 tap_vm.py tap0 vm eth0 & TAP_VM=$!
for _ in $(seq 50); do [ -f /tmp/tap_vm.ready ] && break; sleep 0.1; done
ip -n vm link set eth0 address 02:00:00:00:02:01; ip -n vm addr add 10.2.2.1/24 dev eth0; ip -n vm link set eth0 up
$SW ip link set tap0 up; $SW ovs-vsctl add-port br0 tap0
$SW ip addr add 10.2.2.254/24 dev br0; $SW ip link set br0 up
ifindex() { ip netns exec $1 cat /sys/class/net/$2/ifindex; }
for d in tap0 $(seq -f ph%g $PORTS); do
  [ "$(ifindex vm eth0)" != "$(ifindex sw $d)" ] || { echo "the VM's eth0 has $d's ifindex" >&2; exit 1; }
done
neigh() { ip -n $1 neigh replace 10.2.2.$2 lladdr 02:00:00:00:02:$3 dev $4 nud permanent; }
neigh vm 2 02 eth0; neigh vm 254 fe eth0; neigh rh 1 01 $RH; neigh rh 254 fe $RH; neigh sw 1 01 br0; neigh sw 2 02 br0
# Let the bonds' links come up (miimon) before traffic.
sleep 0.3

# tx_packets NETNS DEV...: each device's count of packets sent, "DEV N" per device.
tx_packets() { local ns=$1; shift
  for d in "$@"; do echo "$d $(ip netns exec $ns cat /sys/class/net/$d/statistics/tx_packets)"; done; }
