package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/stacks"
)

// vm is a throwaway fourth target, written as docs/adding-a-target.md says
// a target is written and registered only in this test: a plain VM with
// k3s that liftoff does not install. Nothing outside this file knows it.
type vm struct{ target.Base }

type vmSettings struct{ Host string }

var vmSpec = config.TargetSpec{
	Name:    "vm",
	Summary: "a VM whose k3s you installed yourself",
	Keys: []config.Key{
		{Name: "liftoff:vmHost", Type: "string", Doc: "Address of the VM."},
	},
	ClusterServices: true,
	Parse: func(r *config.Reader, _ *config.Stack) any {
		return &vmSettings{Host: r.Str("liftoff:vmHost", "", config.HostOrIP)}
	},
}

func (vm) Name() string              { return "vm" }
func (vm) Config() config.TargetSpec { return vmSpec }
func (vm) Flags() []target.Flag {
	return []target.Flag{{Command: target.CommandInit, Name: "vm-host", Usage: "address of the VM"}}
}

func (vm) InitValues(in target.InitInput) (config.Values, error) {
	host := in.Flags.Get("vm-host")
	if host == "" {
		var err error
		if host, err = in.Ask("VM address", ""); err != nil {
			return nil, err
		}
	}
	return config.Values{"liftoff:vmHost": config.Plain(host)}, nil
}

// Program declares the stack's root and records where the VM is: no
// provider, so preview and destroy run without a cluster.
func (vm) Program(ctx *pulumi.Context, cfg *config.Stack, _ target.Facts) error {
	root := &struct{ pulumi.ResourceState }{}
	if err := ctx.RegisterComponentResource("liftoff:vm:Target", ctx.Stack(), root); err != nil {
		return err
	}
	ctx.Export(outputs.Target, pulumi.String(string(cfg.Target)))
	ctx.Export("vmHost", pulumi.String(cfg.Section.(*vmSettings).Host))
	return nil
}

// vmTargets are liftoff's targets and vm, registered once per test binary.
var vmTargets = sync.OnceValue(func() *target.Registry { return stacks.Targets.With(vm{}) })

// TestFourthTarget proves docs/adding-a-target.md: a target is one package
// plus one registration line. The vm target above goes through init (its
// own flag and key), config (its key validated, refused on another
// target), preview and destroy with the real engine; help and errors name it.
func TestFourthTarget(t *testing.T) {
	c := newCLI(t).withEngine()
	c.targets = vmTargets()

	if r := c.mustRun("init", "--help"); !strings.Contains(r.out, "vm-host") || !strings.Contains(r.out, "a VM whose k3s you installed yourself") {
		t.Errorf("init help does not offer the vm target:\n%s", r.out)
	}
	if r := c.run("init", "-s", "lab", "--target", "vm", "--vm-host", "not a host"); r.code != 2 || !strings.Contains(r.err, "vmHost") {
		t.Errorf("bad vm host: %+v", r)
	}
	if r := c.run("init", "-s", "lab", "--target", "kubeconfig", "--vm-host", "10.0.0.5"); r.code != 2 || !strings.Contains(r.err, "--vm-host applies to vm stacks only") {
		t.Errorf("vm flag on another target: %+v", r)
	}
	c.mustRun("init", "-s", "lab", "--target", "vm", "--vm-host", "10.0.0.5", "--registry", "127.0.0.1:5000/app",
		"--set", "database=external", "--set-secret", "databaseUrl=postgres://app:pw@db:5432/app", "--set", "cache=none", "--set", "observability=false")
	if b, _ := os.ReadFile(filepath.Join(c.dir, "Pulumi.lab.yaml")); !strings.Contains(string(b), "liftoff:vmHost: 10.0.0.5") {
		t.Fatalf("stack file:\n%s", b)
	}
	if r := c.run("config", "set", "vmHost", "no such host!"); r.code != 2 || !strings.Contains(r.err, "vmHost") {
		t.Errorf("config set validates the target's key: %+v", r)
	}
	c.mustRun("config", "set", "vmHost", "10.0.0.6")
	if r := c.mustRun("config", "get", "vmHost"); strings.TrimSpace(r.out) != "10.0.0.6" {
		t.Errorf("config get vmHost: %q", r.out)
	}

	r := c.mustRun("preview")
	if !strings.Contains(r.out+r.err, "liftoff:vm:Target") {
		t.Errorf("preview does not run the vm program:\n%s\n%s", r.out, r.err)
	}
	c.mustRun("up", "--infra-only")
	if r := c.mustRun("status", "--json"); !strings.Contains(r.out, "10.0.0.6") {
		t.Errorf("status lacks the vm program's output:\n%s", r.out)
	}
	// The vm program records no cluster, so the sweeps of what runs in it
	// are skipped with --force; the engine's destroy and the state still go.
	c.mustRun("destroy", "--yes", "--force")
	if r := c.mustRun("stacks", "ls"); strings.Contains(r.out, "lab") {
		t.Errorf("the vm stack outlived its destroy:\n%s", r.out)
	}

	// The kubeconfig stack next to it refuses the vm's key by name.
	c2 := newCLI(t)
	c2.targets = c.targets
	if r := c2.run("init", "-s", "dev", "--target", "kubeconfig", "--kubeconfig", kubeconfigFile(t), "--set", "vmHost=10.0.0.5"); r.code != 2 || !strings.Contains(r.err, "does not apply to target kubeconfig") {
		t.Errorf("vm key on kubeconfig: %+v", r)
	}
}
