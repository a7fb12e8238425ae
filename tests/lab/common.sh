# Sourced by the guest test scripts (cwd = the job directory, netscript in PATH).
set -u
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1   # no ND/MLD noise

# section NAME: a marker the host test splits the output at.
section() { echo "=== $1"; }

# veth_pair NS1 NS2 [ADDR1 ADDR2]: namespaces NS1 and NS2 (loopback up) joined by the veth pair
# a1 (in NS1) - a2 (in NS2), both up, with ADDR1/24 and ADDR2/24 when given.
veth_pair() {
  modprobe veth
  for n in "$1" "$2"; do ip netns add "$n"; ip -n "$n" link set lo up; done
  ip link add a1 netns "$1" type veth peer name a2 netns "$2"
  [ -z "${3:-}" ] || { ip -n "$1" addr add "$3/24" dev a1; ip -n "$2" addr add "$4/24" dev a2; }
  ip -n "$1" link set a1 up; ip -n "$2" link set a2 up
}

# wait_port [NETNS] PORT: wait until a TCP or UDP socket listens on PORT.
wait_port() { local ns=${2:+ip netns exec $1} port=${2:-$1}
  for _ in $(seq 100); do $ns ss -Htuln "sport = :$port" | grep -q . && return 0; sleep 0.05; done
  echo "nothing listens on port $port" >&2; return 1; }


# ovs_start NETNS ARGS...: ovsdb-server and ovs-vswitchd (handler threads running) in namespace NETNS, with
# the bridge of `ovs-vsctl add-br ARGS...`.
ovs_start() { local ns="ip netns exec $1"; shift
  modprobe openvswitch
  mkdir -p /etc/openvswitch /run/openvswitch /var/log/openvswitch
  ovsdb-tool create /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
  $ns ovsdb-server --remote=punix:/run/openvswitch/db.sock --pidfile --detach --log-file 2>/dev/null
  $ns ovs-vsctl --no-wait init
  $ns ovs-vswitchd --pidfile --detach --log-file 2>/dev/null
  $ns ovs-vsctl add-br "$@"
  # OVS 3.1 quirk: the first ovs-vswitchd on a new datapath leaves the kernel's per-CPU upcall port ids at 0
  # and every upcall is lost; one restart against the existing datapath fixes it.
  ovs_handlers; $ns ovs-appctl -t ovs-vswitchd exit; sleep 0.3
  $ns ovs-vswitchd --pidfile --detach --log-file 2>/dev/null; ovs_handlers
}

# ovs_handlers: wait until ovs-vswitchd's handler threads run (they start seconds late under TCG).
ovs_handlers() { for _ in $(seq 150); do
    grep -qs '^handler' /proc/"$(cat /run/openvswitch/ovs-vswitchd.pid)"/task/*/comm && return 0; sleep 0.2; done
  echo "ovs-vswitchd handler threads did not start" >&2; return 1; }
