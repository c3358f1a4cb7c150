#!/usr/bin/env bash
# preflight.sh: checks that this host can run k3s, changing nothing.
# Prints one line per check: "ok|warn|fail <check> <detail>[ | <fix>]",
# and facts for the cross-host checks: "fact <name> <value>".
# Inputs: ROLE (server|agent), HA (1 when servers run embedded etcd),
# MIN_DISK_MB (free space needed under /var/lib). It runs as root: liftoff
# starts it through sudo for other users, and sudo refusing is reported as
# the sudo check failing.
set -u
ROLE=${ROLE:-server}
MIN_DISK_MB=${MIN_DISK_MB:-2048}

ok()   { echo "ok $1 $2"; }
warn() { echo "warn $1 $2 | $3"; }
fail() { echo "fail $1 $2 | $3"; }

os=$(uname -s)
arch=$(uname -m)
if [ "$os" != Linux ]; then fail os "$os" "k3s runs on Linux only"; else ok os "$os"; fi
case "$arch" in
  x86_64|aarch64|arm64|armv7l) ok arch "$arch" ;;
  *) fail arch "$arch" "k3s ships for x86_64, aarch64 and armv7l only" ;;
esac

state=$(systemctl is-system-running 2>/dev/null || true)
case "$state" in
  running|degraded|starting|initializing) ok systemd "$state" ;;
  *) fail systemd "${state:-absent}" "k3s is installed as a systemd service: use a distribution booted with systemd" ;;
esac

if awk '$1=="memory" && $4=="1" {found=1} END {exit !found}' /proc/cgroups 2>/dev/null; then
  ok cgroups "memory controller enabled"
else
  fail cgroups "memory controller disabled" "add cgroup_memory=1 cgroup_enable=memory to the kernel command line (Raspberry Pi: /boot/cmdline.txt) and reboot"
fi

if [ "$(awk 'NR>1' /proc/swaps 2>/dev/null | wc -l)" -gt 0 ]; then
  warn swap "on" "k3s tolerates swap, but memory limits are soft with it: swapoff -a and remove it from /etc/fstab"
else
  ok swap "off"
fi

dir=/var/lib
[ -d /var/lib/rancher ] && dir=/var/lib/rancher
free_mb=$(df -Pm "$dir" | awk 'NR==2 {print $4}')
if [ "${free_mb:-0}" -lt "$MIN_DISK_MB" ]; then
  fail disk "${free_mb}MB free under $dir" "free at least ${MIN_DISK_MB}MB under /var/lib"
else
  ok disk "${free_mb}MB free under $dir"
fi

# Ports k3s needs; a port held by k3s itself is fine (a rerun or an upgrade).
tcp="10250"
[ "$ROLE" = server ] && tcp="6443 $tcp"
[ "$ROLE" = server ] && [ "${HA:-0}" = 1 ] && tcp="$tcp 2379 2380"
for p in $tcp; do
  holder=$(ss -Hltnp "sport = :$p" 2>/dev/null | head -1)
  if [ -n "$holder" ] && ! echo "$holder" | grep -q '"k3s'; then
    fail "port-$p" "tcp $p in use" "stop what listens on $p (ss -ltnp 'sport = :$p')"
  else
    ok "port-$p" "tcp $p free"
  fi
done
if [ -n "$(ss -Hlunp 'sport = :8472' 2>/dev/null | grep -v '"k3s' | head -1)" ]; then
  fail port-8472 "udp 8472 in use" "flannel's VXLAN needs udp 8472: stop what holds it"
else
  ok port-8472 "udp 8472 free"
fi

if [ "$(id -u)" = 0 ]; then
  ok sudo "runs as root${SUDO_USER:+ (sudo from $SUDO_USER)}"
else
  fail sudo "runs as $(id -un), not root" "run the checks through sudo"
fi

echo "fact hostname $(hostname)"
echo "fact time $(date +%s)"
exit 0
