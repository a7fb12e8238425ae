# scripts/tcp_metrics.ns on 6.1 with kprobes, against the kernel's own counters. Client namespace nsc
# (10.4.4.1) and server namespace nss (10.4.4.2) on a veth pair, static neighbours. netscript runs once
# (summary mode, totals since the start printed once at exit, every socket of the guest) over two
# phases (tcp_load.py):
#   loss:     netem drops 15% of what the client's veth c0 sends while the client sends 2 MB to a sink
#             (RTOs, TLPs), then 40 x 100 bytes 50 ms apart to another (each loss of one a TLP: with
#             2 MB alone, a run without TLPs happened); each client waits for its server's close, so
#             nothing is left in flight;
#   overflow: netem off, a listener in nss with backlog 1 that never accepts, 6 clients connecting.
# The -c command ends with the marker `=== final`: the summary netscript prints at exit comes after it.
# nstat reads the namespaces' counters before and after.
# Before that: what this kernel has, and every program of --mode both through its verifier.
. ./common.sh
modprobe veth; modprobe sch_netem
for n in nsc nss; do ip netns add $n; ip -n $n link set lo up; done
ip link add c0 address 02:00:00:00:04:01 netns nsc type veth peer name s0 address 02:00:00:00:04:02 netns nss
ip -n nsc addr add 10.4.4.1/24 dev c0; ip -n nss addr add 10.4.4.2/24 dev s0
ip -n nsc link set c0 up; ip -n nss link set s0 up
ip -n nsc neigh replace 10.4.4.2 lladdr 02:00:00:00:04:02 dev c0 nud permanent
ip -n nss neigh replace 10.4.4.1 lladdr 02:00:00:00:04:01 dev s0 nud permanent
ip netns exec nsc ping -q -c 1 -W 2 10.4.4.2 >/dev/null

section kernel
echo "sock_events: $(ls /sys/kernel/tracing/events/sock | grep -v -e enable -e filter | tr '\n' ' ')"
section verifier
netscript --dry-run scripts/tcp_metrics.ns --mode both 2>&1 | tail -1

# counters NS: the namespace's absolute counters as `Name: value` lines
counters() { ip netns exec $1 nstat -asz TcpExtTCPTimeouts TcpExtTCPLossProbes TcpExtListenOverflows |
  awk '!/^#/ { print $1 ": " $2 }'; }
for n in nsc nss; do section "$n before"; counters $n; done

cat > traffic.sh <<'T'
. ./common.sh
ip netns exec nss python3 tcp_load.py sink 7100 & wait_port nss 7100
ip netns exec nsc tc qdisc add dev c0 root netem loss 15%
ip netns exec nsc python3 tcp_load.py bulk 10.4.4.2 7100 2000000
ip netns exec nss python3 tcp_load.py sink 7101 & wait_port nss 7101
ip netns exec nsc python3 tcp_load.py trickle 10.4.4.2 7101 40
ip netns exec nsc tc qdisc del dev c0 root
ip netns exec nss python3 tcp_load.py listen 7200 & wait_port nss 7200
ip netns exec nsc python3 tcp_load.py connect 10.4.4.2 7200 6 2
section final
T
section run
netscript scripts/tcp_metrics.ns --mode summary --summary maps --reset=false --interval 100 -c "bash traffic.sh" 2>&1
for n in nsc nss; do section "$n after"; counters $n; done
