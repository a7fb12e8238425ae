# Sourced by the guest test scripts (cwd = the job directory, netscript in PATH).
set -u
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1   # no ND/MLD noise

# section NAME: a marker the host test splits the output at.
section() { echo "=== $1"; }

# wait_port [NETNS] PORT: wait until a TCP or UDP socket listens on PORT.
wait_port() { local ns=${2:+ip netns exec $1} port=${2:-$1}
  for _ in $(seq 100); do $ns ss -Htuln "sport = :$port" | grep -q . && return 0; sleep 0.05; done
  echo "nothing listens on port $port" >&2; return 1; }

