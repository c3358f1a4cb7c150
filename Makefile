# liftoff's vocabulary. `make test` is what CI runs (.ci/run); it installs and
# builds everything it needs on a fresh Debian machine, then runs every test.

SHELL      := /bin/bash
GO         ?= go
CACHE      := $(CURDIR)/.cache
BIN        := $(CACHE)/bin
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS    := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
PULUMI_VERSION := v3.259.0
KUBE_VERSION   := v1.37.2
# The Kubernetes provider plugin: the one served pseudo-version of
# pulumi-kubernetes/provider/v4 is the v4.25.0 release (tools/pulumi-kubernetes).
K8S_PROVIDER_VERSION := 4.25.0
GOARCH         := $(shell $(GO) env GOARCH)
IMAGES         := $(CACHE)/images
TEST_TIMEOUT   ?= 40m

# Debian packages the tests start as real servers or use as tools.
# containerd, runc, the CNI plugins, iptables and conntrack run the real test node.
APT_PACKAGES := postgresql redis-server etcd-server prometheus prometheus-alertmanager openssh-server openssh-client iproute2 wrk hey \
                containerd runc containernetworking-plugins iptables conntrack

export LIFTOFF_PULUMI := $(BIN)/pulumi
# Tests declare no provider the machine lacks; never fetch plugins from the network.
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION := true
export PATH := $(BIN):$(PATH)
# Every Go build, vet and test compiles with -trimpath, as `make build` and
# liftoff's image builder do: one set of compiled packages serves them all
# (without it, go test and go build compile the whole dependency tree twice).
export GOFLAGS := $(strip $(GOFLAGS) -trimpath)

# STEP announces a long step, what it builds and why, and its measured cold
# time on 2 cores; it beats every minute and prints the time taken (tools/step).
STEP := $(CURDIR)/tools/step

KUBE_BINS    := $(addprefix $(BIN)/,kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
# The images the real node runs in the demo: its sandbox (pause), the
# stand-ins for the in-cluster registry, PostgreSQL and Valkey, and, when the
# monitoring stack's charts are at hand (make charts), its images (the
# Prometheus operator and config reloader, Prometheus, Alertmanager, node
# exporter, the OpenTelemetry Collector).
NODE_IMAGES  := $(addprefix $(IMAGES)/,pause/index.json registry/index.json postgres/index.json valkey/index.json)
MONITORING_IMAGES := $(foreach i,prometheus-operator prometheus-config-reloader prometheus alertmanager node-exporter otelcol,$(IMAGES)/$(i)/index.json)

.PHONY: all build test test-go deps tools testcluster democluster monitoring-images charts e2e e2e-up demo lint fuzz bench-app bench-data bench-image bench-deploy clean

all: build

## build: the liftoff CLI and the shortener service into ./bin
build: bin/liftoff bin/shortener

# What bin/liftoff is built from (it embeds the chart): it is rebuilt only
# when one of these changes, so a second run skips it without a word.
GO_SOURCES := go.mod go.sum $(shell find cmd internal stacks components charts app -type f -not -name '*_test.go' -not -path '*/testdata/*' 2>/dev/null)

bin/liftoff: $(GO_SOURCES)
	@$(STEP) "bin/liftoff, the CLI (the demo runs it; it builds every test image)" "7 min 30 s" -- \
	  $(GO) build -ldflags '$(LDFLAGS)' -o $@ ./cmd/liftoff

bin/shortener: $(GO_SOURCES)
	@$(GO) build -ldflags '-s -w -X main.version=$(VERSION)' -o $@ ./app/cmd/shortener

## test: install what is missing, build cached tools, run every test
test: deps tools testcluster test-go

test-go:
	@$(STEP) "go vet ./..." "40 s" -- $(GO) vet ./...
	@$(STEP) "go test ./... (compiles the test binaries, then every test; the real-node tests are most of it)" "8 min" -- \
	  $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

## deps: the Debian packages the tests need (installed only when missing, and only as root)
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "==> installing Debian packages:$$missing (cold: about 15 s from Debian's mirror)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; exit 1; fi; \
	fi

## tools: the pulumi CLI and the Kubernetes provider plugin at pinned versions, built from the module proxy (cached in .cache/bin)
tools: $(BIN)/pulumi $(BIN)/pulumi-resource-kubernetes

$(BIN)/pulumi: tools/pulumi/go.mod tools/pulumi/go.sum
	@mkdir -p $(BIN)
	@cd tools/pulumi && $(STEP) "the pulumi CLI $(PULUMI_VERSION) (liftoff drives its engine)" "3 min" -- \
	  $(GO) build -ldflags '-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$(PULUMI_VERSION)' \
	  -o $@ github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

# The provider's main embeds its schema, which upstream generates and does not
# ship: gen/ downloads the provider module and writes it first.
$(BIN)/pulumi-resource-kubernetes: tools/pulumi-kubernetes/go.mod tools/pulumi-kubernetes/go.sum tools/pulumi-kubernetes/main.go tools/pulumi-kubernetes/gen/main.go
	@mkdir -p $(BIN)
	@cd tools/pulumi-kubernetes && $(STEP) "the Kubernetes provider plugin $(K8S_PROVIDER_VERSION) (Pulumi applies the in-cluster stack with it)" "5 min 40 s" -- \
	  sh -c "$(GO) run ./gen -version $(K8S_PROVIDER_VERSION) && \
	  $(GO) build -ldflags '-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$(K8S_PROVIDER_VERSION)' -o $@ ."

## testcluster: the local test cluster: control plane, kwok, a real node (kubelet, kube-proxy; containerd, runc, CNI from Debian), its pause image and the test images
testcluster: democluster $(BIN)/kwok $(BIN)/kube-network-policies $(IMAGES)/echo/index.json $(IMAGES)/metrics-server/index.json

# democluster: what the demo's cluster needs and nothing more. The
# monitoring stack's images are built only when its charts are at hand:
# without them nothing would run them (5 min saved on a cold machine).
democluster: deps $(KUBE_BINS) $(NODE_IMAGES) charts
	@if grep -q '^  kube-prometheus-stack:' $(CACHE)/charts/index.yaml 2>/dev/null; then $(MAKE) --no-print-directory monitoring-images; \
	else echo "==> no monitoring charts: the monitoring stack's images are not built, its test and demo step are left out"; fi

monitoring-images: $(MONITORING_IMAGES)

# The pinned upstream charts liftoff installs, for the tests and the demo
# that install the monitoring stack on the local cluster (served to liftoff
# as a chart mirror), fetched by liftoff itself (liftoff mirror charts: each
# archive checked against its repository's digest; a second run needs no
# network). From their public repositories when they can be reached; else
# from the offline copy beside the checkout (../shared/charts), the one use
# of ../shared. Without either the monitoring stack's test skips, saying so,
# and the demo runs without observability.
charts: | bin/liftoff
	@mkdir -p $(CACHE)
	@if bin/liftoff mirror charts $(CACHE)/charts >$(CACHE)/charts.log 2>&1; then \
	  echo "==> the pinned upstream charts, from their public repositories: .cache/charts"; \
	elif [ -f ../shared/charts/index.yaml ]; then \
	  echo "==> the chart repositories cannot be reached (.cache/charts.log): the pinned charts from the offline copy, ../shared/charts"; \
	  bin/liftoff mirror charts $(CACHE)/charts --from ../shared/charts --allow-missing >>$(CACHE)/charts.log 2>&1 || { cat $(CACHE)/charts.log; exit 1; }; \
	else echo "==> no copy of the pinned upstream charts (the chart repositories cannot be reached, see .cache/charts.log; no ../shared/charts): the monitoring stack's test and demo step are left out"; fi

$(KUBE_BINS) &: tools/kube/go.mod tools/kube/go.sum
	@mkdir -p $(BIN)
	@cd tools/kube && $(STEP) "Kubernetes $(KUBE_VERSION): the API server, controller manager and scheduler, the node's kubelet and kube-proxy" "5 min" -- \
	  $(GO) build -ldflags '-s -w -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION)' -o $(BIN)/ \
	  $(addprefix k8s.io/kubernetes/cmd/,kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

$(BIN)/kwok: tools/kwok/go.mod tools/kwok/go.sum
	@mkdir -p $(BIN)
	@cd tools/kwok && $(STEP) "kwok (simulated nodes for the rollout tests)" "1 min" -- $(GO) build -ldflags '-s -w' -o $@ sigs.k8s.io/kwok/cmd/kwok

# The real node's sandbox image and the echo server its own tests run, built
# by liftoff's own builder (bin/liftoff, built once) from small Go programs
# under internal/testenv.
$(IMAGES)/%/index.json: internal/testenv/%/main.go | bin/liftoff
	@rm -rf $(IMAGES)/$*
	@$(STEP) "the $* image with liftoff build" "a few seconds" -- \
	  env LIFTOFF_HOME=$(CACHE)/liftoff-home bin/liftoff build --package ./internal/testenv/$* --platform linux/$(GOARCH) --oci-layout $(IMAGES)/$*

# Stand-ins for the official images of the in-cluster registry, PostgreSQL
# and Valkey, which cannot be pulled here (tools/images): the registry built
# from CNCF distribution's module by liftoff's own builder, PostgreSQL and
# Valkey (Debian's redis-server) assembled from Debian's binaries.
IMAGE_TOOLS := tools/images/go.mod tools/images/go.sum
$(IMAGES)/registry/index.json: $(IMAGE_TOOLS) tools/images/registry/main.go | bin/liftoff
	@rm -rf $(IMAGES)/registry
	@$(STEP) "the in-cluster registry's stand-in image (CNCF distribution) with liftoff build" "25 s" -- \
	  env LIFTOFF_HOME=$(CACHE)/liftoff-home bin/liftoff --cwd tools/images build --package ./registry --platform linux/$(GOARCH) --oci-layout $(IMAGES)/registry

$(BIN)/standin: $(IMAGE_TOOLS) tools/images/standin/main.go
	@mkdir -p $(BIN)
	@cd tools/images && $(GO) build -o $@ ./standin

$(IMAGES)/postgres/index.json: $(BIN)/standin tools/images/postgres-entrypoint/main.go
	@cd tools/images && $(STEP) "the PostgreSQL stand-in image from Debian's binaries" "5 s" -- $(BIN)/standin postgres $(IMAGES)/postgres

$(IMAGES)/valkey/index.json: $(BIN)/standin tools/images/valkey-entrypoint/main.go
	@cd tools/images && $(STEP) "the Valkey stand-in image from Debian's redis-server" "a few seconds" -- $(BIN)/standin valkey $(IMAGES)/valkey

# The monitoring stack's stand-ins: the operator and its config reloader
# built from their module (v0.85.0, kube-prometheus-stack 77.14.0's) and
# Prometheus 3.16.0 from its module (Debian's 2.42 has no Kubernetes service
# discovery), each program in an image of its own; Alertmanager 0.25 from
# Debian's binary.
MONITORING_TOOLS := tools/monitoring/go.mod tools/monitoring/go.sum
$(BIN)/operator $(BIN)/prometheus-config-reloader &: $(MONITORING_TOOLS)
	@mkdir -p $(BIN)
	@cd tools/monitoring && $(STEP) "the Prometheus operator and config reloader v0.85.0 (tools/monitoring), for the monitoring stack's images" "3 min" -- \
	  env CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $(BIN)/ \
	  github.com/prometheus-operator/prometheus-operator/cmd/operator github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader

PROMETHEUS_VERSION := 3.16.0
$(BIN)/prometheus: tools/prometheus/go.mod tools/prometheus/go.sum
	@mkdir -p $(BIN)
	@cd tools/prometheus && $(STEP) "Prometheus $(PROMETHEUS_VERSION) (tools/prometheus), for the monitoring stack's image" "3 min" -- \
	  env CGO_ENABLED=0 $(GO) build -tags remove_all_sd,enable_kubernetes_sd \
	  -ldflags '-s -w -X github.com/prometheus/common/version.Version=$(PROMETHEUS_VERSION)' -o $@ github.com/prometheus/prometheus/cmd/prometheus

$(IMAGES)/prometheus/index.json: $(BIN)/standin $(BIN)/prometheus
	@$(BIN)/standin prometheus $(IMAGES)/prometheus $(BIN)/prometheus
$(IMAGES)/prometheus-operator/index.json: $(BIN)/standin $(BIN)/operator
	@$(BIN)/standin prometheus-operator $(IMAGES)/prometheus-operator $(BIN)/operator
$(IMAGES)/prometheus-config-reloader/index.json: $(BIN)/standin $(BIN)/prometheus-config-reloader
	@$(BIN)/standin prometheus-config-reloader $(IMAGES)/prometheus-config-reloader $(BIN)/prometheus-config-reloader
# The NetworkPolicy agent kind runs, kube-network-policies v0.8.0, from its
# module (tools/netpol): the hardening test's node enforces NetworkPolicies
# with it (internal/testenv/netpol.go).
$(BIN)/kube-network-policies: tools/netpol/go.mod tools/netpol/go.sum
	@mkdir -p $(BIN)
	@cd tools/netpol && $(STEP) "the NetworkPolicy agent kube-network-policies v0.8.0 (tools/netpol), for the hardening test's node" "2 min" -- \
	  env CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $@ sigs.k8s.io/kube-network-policies/cmd
# metrics-server v0.8.0 from its module (tools/metrics-server): liftoff
# installs it on a cluster without a metrics API when a stack autoscales,
# and the autoscaling test runs it on the real node.
$(BIN)/metrics-server: tools/metrics-server/go.mod tools/metrics-server/go.sum
	@mkdir -p $(BIN)
	@cd tools/metrics-server && $(STEP) "metrics-server v0.8.0 (tools/metrics-server), for the autoscaling test's image" "2 min" -- \
	  env CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $@ sigs.k8s.io/metrics-server/cmd/metrics-server
$(IMAGES)/metrics-server/index.json: $(BIN)/standin $(BIN)/metrics-server
	@$(BIN)/standin metrics-server $(IMAGES)/metrics-server $(BIN)/metrics-server
# node_exporter v1.9.1 from its module (tools/node-exporter), the version
# kube-prometheus-stack 77.14.0 runs: its chart passes flags Debian's 1.5
# does not know (--path.udev.data).
NODE_EXPORTER_VERSION := 1.9.1
$(BIN)/node_exporter: tools/node-exporter/go.mod tools/node-exporter/go.sum
	@mkdir -p $(BIN)
	@cd tools/node-exporter && $(STEP) "node_exporter $(NODE_EXPORTER_VERSION) (tools/node-exporter), for the monitoring stack's image" "1 min" -- \
	  env CGO_ENABLED=0 $(GO) build -ldflags '-s -w -X github.com/prometheus/common/version.Version=$(NODE_EXPORTER_VERSION)' \
	  -o $@ github.com/prometheus/node_exporter
$(IMAGES)/node-exporter/index.json: $(BIN)/standin $(BIN)/node_exporter
	@$(BIN)/standin node-exporter $(IMAGES)/node-exporter $(BIN)/node_exporter
# The OpenTelemetry Collector: a small distribution of the components
# liftoff configures (tools/otelcol, collector v0.165.0).
$(BIN)/otelcol: tools/otelcol/go.mod tools/otelcol/go.sum tools/otelcol/main.go
	@mkdir -p $(BIN)
	@cd tools/otelcol && $(STEP) "the OpenTelemetry Collector v0.165.0 (tools/otelcol), for the monitoring stack's image" "3 min" -- \
	  env CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $@ .
$(IMAGES)/otelcol/index.json: $(BIN)/standin $(BIN)/otelcol
	@$(BIN)/standin otelcol $(IMAGES)/otelcol $(BIN)/otelcol
$(IMAGES)/alertmanager/index.json: $(BIN)/standin | deps
	@$(BIN)/standin alertmanager $(IMAGES)/alertmanager

## bench-app: wrk against the shortener (PostgreSQL + Redis) and a bare net/http server, POST /urls, peak RSS
bench-app: deps
	$(GO) test -run '^$$' -bench BenchmarkApp -benchtime 1x -timeout 10m ./app/cmd/shortener

## bench-data: backup, restore drill and restore of the shortener's database at 100k and 1M links with their clicks, on the real node
bench-data: deps democluster
	set -o pipefail; $(GO) test -run '^$$' -bench BenchmarkBackup -benchtime 1x -timeout 30m ./internal/backup | tee $(CACHE)/bench-data.log
	@grep '^bench-data:' $(CACHE)/bench-data.log

## bench-image: cold build+push, then incremental after a one-line change (times, bytes, layers)
bench-image:
	$(GO) test -run '^$$' -bench BenchmarkImage -benchtime 1x -timeout 20m ./internal/image

## fuzz: explore the API fuzz target beyond its seed corpus (FUZZTIME, default 60s)
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzAPI -fuzztime $${FUZZTIME:-60s} ./app/api

## e2e: liftoff deploy on the local test cluster with an in-process registry: build, push, blue, green, rollback
e2e: deps tools testcluster
	$(GO) test -count=1 -run 'TestE2EDeploy' -v -timeout 15m ./cmd/liftoff

## e2e-up: liftoff init + up (twice, and once killed mid-deploy) + destroy, real engine, local test cluster
e2e-up: deps tools testcluster
	$(GO) test -count=1 -run 'TestE2EUp' -v -timeout 20m ./cmd/liftoff

## demo: the main job: a local cluster with a real node, PostgreSQL and Redis, then bin/liftoff as a user runs it (DEMO_KEEP=1 keeps it serving)
demo: deps tools democluster build $(BIN)/liftoff-demo
	$(BIN)/liftoff-demo

$(BIN)/liftoff-demo: $(GO_SOURCES)
	@$(STEP) "the demo's driver (internal/demo)" "5 s after bin/liftoff" -- $(GO) build -o $@ ./internal/demo

## bench-deploy: deploy-to-flip, kube-proxy convergence, rollback and failed requests under load, on kwok nodes then on a real node
bench-deploy: deps testcluster
	set -o pipefail; $(GO) test -run '^$$' -bench 'BenchmarkDeploy(Kwok)?$$' -benchtime 1x -timeout 15m ./internal/rollout | tee $(CACHE)/bench-deploy.log
	@grep '^bench-deploy: to-flip' $(CACHE)/bench-deploy.log | tail -1

## lint: vet and formatting
lint:
	$(GO) vet ./...
	@out=$$(gofmt -l cmd internal stacks components app); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
