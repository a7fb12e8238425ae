# openvswitch module functions: kprobes resolve them through kallsyms, fentry/fexit type-check their
# arguments through the module's split BTF (/sys/kernel/btf/openvswitch). 5 pings from ns1 to ns2 in each
# run. 5.10 has no module BTF: the run with args fails naming why, and plain fentry/fexit probes on module
# functions attach as kprobes (section fallback).
. ./ovs_topology.sh
PING="ip netns exec ns1 ping -q -c 5 -i 0.3 10.1.1.2 >/dev/null"
section listing
netscript -l 'kprobe:ovs_dp_process_*'; netscript -lv 'fentry:ovs_flow_key_extract_user*'
section run
netscript -e '
kprobe:ovs_dp_process_packet { @kprobe = count(); }
fentry:ovs_dp_process_packet { @fentry = count(); @bytes = sum(args.skb->len); if (args.key != 0) { @with_key = count(); } }
fexit:ovs_flow_key_extract_userspace { @exec_retval[retval] = count(); }' -c "$PING" 2>&1 || echo "netscript exit $?"
section fallback
$SW ovs-appctl revalidator/purge   # the first pings upcalled again: ovs_flow_key_extract_userspace runs
netscript -e '
fentry:ovs_dp_process_packet { @[probe] = count(); }
fexit:ovs_flow_key_extract_userspace { @exec_retval[retval] = count(); }' -c "$PING" 2>&1
