#!/usr/bin/env bash
# uninstall.sh: removes k3s from this host with the uninstall script its
# installer left (liftoff's or upstream's); a host without k3s is fine.
set -euo pipefail
for s in /usr/local/bin/k3s-uninstall.sh /usr/local/bin/k3s-agent-uninstall.sh; do
  if [ -x "$s" ]; then "$s"; echo "liftoff: ran $s"; fi
done
echo "liftoff: k3s removed"
