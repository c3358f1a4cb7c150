#!/usr/bin/env bash
# kubeconfig.sh: prints the admin kubeconfig the first server wrote.
set -euo pipefail
cat /etc/rancher/k3s/k3s.yaml
