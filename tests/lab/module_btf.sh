# openvswitch module functions: kprobes resolve them through kallsyms, fentry/fexit type-check their
# arguments through the module's split BTF (/sys/kernel/btf/openvswitch). 5 pings from ns1 to ns2.
. ./ovs_topology.sh
section listing
netscript -l 'kprobe:ovs_dp_process_*'; netscript -lv 'fentry:ovs_flow_key_extract_user*'
section run
netscript -e '
kprobe:ovs_dp_process_packet { @kprobe = count(); }
fentry:ovs_dp_process_packet { @fentry = count(); @bytes = sum(args.skb->len); if (args.key != 0) { @with_key = count(); } }
fexit:ovs_flow_key_extract_userspace { @exec_retval[retval] = count(); }' \
  -c "ip netns exec ns1 ping -q -c 5 -i 0.3 10.1.1.2 >/dev/null" 2>&1
