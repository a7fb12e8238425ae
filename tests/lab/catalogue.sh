# Every stage of the stdlib's catalogue (netscript -l 'stage:*'), in its kprobe form, passes this
# kernel's verifier: the openvswitch and tun ones included, resolved in their modules.
. ./common.sh
modprobe openvswitch && modprobe tun
{ echo 'path everything {'; echo '  key = pkt_key($skb);'
  netscript -l 'stage:*' | sed 's/^stage:\(.*\)/  stage? S_\1 = \1;/'
  echo '}'; } > catalogue.ns
section stages
grep -c 'stage?' catalogue.ns
section verifier
netscript --dry-run --stages kprobe catalogue.ns 2>&1
