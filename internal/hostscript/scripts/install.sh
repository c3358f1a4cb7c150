#!/usr/bin/env bash
# install.sh: installs k3s on this host, or upgrades it in place; a rerun
# with nothing changed changes nothing. Inputs, exported before this script:
#   ROLE            server | agent
#   K3S_VERSION     v1.N.P+k3sM (or empty with K3S_CHANNEL)
#   K3S_CHANNEL     stable | latest | v1.N, resolved through update.k3s.io
#   K3S_TOKEN       the cluster's shared secret
#   K3S_URL         https://<first server>:6443 for every node but the first server
#   CLUSTER_INIT    1 on the first server of an HA (embedded etcd) cluster
#   NODE_NAME       optional Kubernetes node name
#   TLS_SANS        comma-separated extra names in the API server certificate
#   AIRGAP_BINARY   path of an uploaded k3s binary (air-gap); otherwise downloaded
#   AIRGAP_IMAGES   path of an uploaded images tarball (air-gap)
#   REGISTRY_MIRROR host:port of the in-cluster registry the nodes pull from
#   K3S_RELEASE_BASE where binaries are downloaded from (a mirror)
set -euo pipefail
BIN=/usr/local/bin/k3s
CONF=/etc/rancher/k3s
DATA=/var/lib/rancher/k3s
BASE=${K3S_RELEASE_BASE:-https://github.com/k3s-io/k3s/releases/download}
say() { echo "liftoff: $*"; }

case "$ROLE" in server) unit=k3s ;; agent) unit=k3s-agent ;; *) echo "ROLE must be server or agent" >&2; exit 2 ;; esac
case "$(uname -m)" in
  x86_64) suffix=""; sums=amd64 ;;
  aarch64|arm64) suffix="-arm64"; sums=arm64 ;;
  armv7l) suffix="-armhf"; sums=arm ;;
  *) echo "unsupported architecture $(uname -m)" >&2; exit 2 ;;
esac
mkdir -p "$CONF" "$DATA" /usr/local/bin /etc/systemd/system
changed=""
# Uploads are relative to the SSH user's home, also when run through sudo.
login_home=$(getent passwd "${SUDO_USER:-$(id -un)}" | cut -d: -f6)
abs() { case "$1" in /*|"") echo "$1" ;; *) echo "$login_home/$1" ;; esac; }
AIRGAP_BINARY=$(abs "${AIRGAP_BINARY:-}")
AIRGAP_IMAGES=$(abs "${AIRGAP_IMAGES:-}")

# 1. The binary: uploaded (air-gap) or downloaded and checked against the release's checksums.
new=$(mktemp "$BIN.XXXXXX")
trap 'rm -f "$new"' EXIT
if [ -n "${AIRGAP_BINARY:-}" ]; then
  cp "$AIRGAP_BINARY" "$new"
else
  version=${K3S_VERSION:-}
  if [ -z "$version" ]; then
    version=$(curl -fsS -o /dev/null -w '%{url_effective}' "https://update.k3s.io/v1-release/channels/${K3S_CHANNEL:-stable}" | sed 's#.*/##')
  fi
  enc=$(echo "$version" | sed 's/+/%2B/')
  curl -fsSL -o "$new" "$BASE/$enc/k3s$suffix"
  want=$(curl -fsSL "$BASE/$enc/sha256sum-$sums.txt" | awk -v f="k3s$suffix" '$2==f {print $1}')
  got=$(sha256sum "$new" | awk '{print $1}')
  [ -n "$want" ] && [ "$want" = "$got" ] || { echo "checksum mismatch for k3s $version: $got, release says ${want:-nothing}" >&2; exit 3; }
fi
chmod 0755 "$new"
if ! cmp -s "$new" "$BIN" 2>/dev/null; then
  mv "$new" "$BIN"
  changed="$changed binary"
fi
if [ -n "${AIRGAP_IMAGES:-}" ]; then
  mkdir -p "$DATA/agent/images"
  if ! cmp -s "$AIRGAP_IMAGES" "$DATA/agent/images/k3s-airgap-images.tar" 2>/dev/null; then
    cp "$AIRGAP_IMAGES" "$DATA/agent/images/k3s-airgap-images.tar"
    changed="$changed images"
  fi
fi

# 2. Configuration, written only when it differs.
put() { # put FILE MODE: stdin into FILE when different
  local tmp; tmp=$(mktemp); cat >"$tmp"
  if cmp -s "$tmp" "$1" 2>/dev/null; then rm -f "$tmp"; return 1; fi
  install -m "$2" "$tmp" "$1"; rm -f "$tmp"; return 0
}
{
  echo "token: \"$K3S_TOKEN\""
  [ -n "${K3S_URL:-}" ] && echo "server: \"$K3S_URL\""
  [ -n "${NODE_NAME:-}" ] && echo "node-name: \"$NODE_NAME\""
  if [ "$ROLE" = server ]; then
    [ "${CLUSTER_INIT:-0}" = 1 ] && echo "cluster-init: true"
    echo "secrets-encryption: true"
    echo "write-kubeconfig-mode: \"0600\""
    if [ -n "${TLS_SANS:-}" ]; then
      echo "tls-san:"
      for s in ${TLS_SANS//,/ }; do echo "  - \"$s\""; done
    fi
  fi
} | put "$CONF/config.yaml" 0600 && changed="$changed config"
if [ -n "${REGISTRY_MIRROR:-}" ]; then
  printf 'mirrors:\n  "%s":\n    endpoint:\n      - "http://%s"\n' "$REGISTRY_MIRROR" "$REGISTRY_MIRROR" | put "$CONF/registries.yaml" 0644 && changed="$changed registries"
fi
cat <<UNIT | put "/etc/systemd/system/$unit.service" 0644 && changed="$changed unit" || true
[Unit]
Description=Lightweight Kubernetes ($ROLE, installed by liftoff)
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=$BIN $ROLE
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s

[Install]
WantedBy=multi-user.target
UNIT
cat <<UNINSTALL | put "/usr/local/bin/$unit-uninstall.sh" 0755 || true
#!/bin/sh
# Removes what liftoff's install.sh put on this host.
set -e
systemctl stop $unit 2>/dev/null || true
systemctl disable $unit 2>/dev/null || true
rm -f /etc/systemd/system/$unit.service
systemctl daemon-reload 2>/dev/null || true
rm -rf /etc/rancher/k3s /var/lib/rancher/k3s
rm -f $BIN /usr/local/bin/$unit-uninstall.sh
UNINSTALL

# 3. Start, or restart what changed; then wait until the node serves.
systemctl daemon-reload
systemctl enable "$unit" >/dev/null 2>&1 || true
if [ -n "$changed" ] || ! systemctl is-active --quiet "$unit"; then
  systemctl restart "$unit"
fi
for _ in $(seq 1 120); do
  if [ "$ROLE" = server ]; then
    "$BIN" kubectl get --raw /readyz >/dev/null 2>&1 && break
  else
    systemctl is-active --quiet "$unit" && break
  fi
  sleep 1
done
[ "$ROLE" = agent ] || "$BIN" kubectl get --raw /readyz >/dev/null 2>&1 || { echo "k3s $ROLE did not become ready in 120s: journalctl -u $unit" >&2; exit 4; }
say "k3s $("$BIN" --version | head -1 | awk '{print $3}') $ROLE ${changed:+changed:$changed}${changed:-unchanged}"
