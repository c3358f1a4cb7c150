package launch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/teardown"
	"github.com/liftoff-dev/liftoff/internal/testenv"
	"github.com/liftoff-dev/liftoff/internal/ui"
	"github.com/liftoff-dev/liftoff/stacks/aws"
)

// volumes is an AWS account's detached volumes, one kind of leftover.
type volumes struct {
	tags    map[string]map[string]string // id -> tags
	refused map[string]error
	deleted []string
}

func (v *volumes) Name() string { return "volume" }
func (v *volumes) List(_ context.Context, stack string) ([]teardown.Resource, error) {
	var out []teardown.Resource
	for id, tags := range v.tags {
		if tags[teardown.TagStack] == stack {
			out = append(out, teardown.Resource{ID: id, Tags: tags})
		}
	}
	return out, nil
}
func (v *volumes) Delete(_ context.Context, id string) error {
	if err := v.refused[id]; err != nil {
		return err
	}
	delete(v.tags, id)
	v.deleted = append(v.deleted, id)
	return nil
}

// offlineAWS is the aws target with its program and plugins left out: the
// stack is empty and this machine has no AWS plugin.
type offlineAWS struct{ aws.Target }

func (offlineAWS) Plugins(*config.Stack) []engine.Plugin                      { return nil }
func (offlineAWS) Program(*pulumi.Context, *config.Stack, target.Facts) error { return nil }

// TestDestroyAWSLeftovers: on an aws stack, the leftover sweep runs after
// the engine's destroy and its receipt decides the state's fate: kept while
// something is left (exit class engine), removed once nothing is, or with
// --force. Real engine on a file backend; the AWS account is a fake.
func TestDestroyAWSLeftovers(t *testing.T) {
	ctx := context.Background()
	dir, home := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Pulumi.yaml"), []byte("name: shop\nruntime: go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"LIFTOFF_PULUMI": testenv.Pulumi(t), "LIFTOFF_PASSPHRASE": "correct horse"}
	eng, err := engine.New(ctx, engine.Options{Dir: dir, Home: home, Getenv: func(k string) string { return vars[k] }})
	if err != nil {
		t.Fatal(err)
	}
	mine := map[string]string{teardown.TagProject: "shop", teardown.TagStack: "dev"}
	acct := &volumes{
		tags: map[string]map[string]string{
			"vol-pvc": mine, "vol-locked": mine,
			"vol-other-project": {teardown.TagProject: "blog", teardown.TagStack: "dev"},
		},
		refused: map[string]error{"vol-locked": errors.New("UnauthorizedOperation: ec2:DeleteVolume")},
	}
	streams, _, _, _ := ui.Test()
	tg := offlineAWS{aws.Target{Kinds: func(_ context.Context, region string) ([]teardown.Kind, error) {
		if region != "eu-west-1" {
			t.Errorf("swept region %q", region)
		}
		return []teardown.Kind{acct}, nil
	}}}
	d := Deps{Engine: eng, Printer: ui.NewPrinter(streams, ui.Options{}), Now: time.Now,
		Targets:   target.NewRegistry(nil, nil, tg),
		StackLock: StackLock{Dir: t.TempDir(), Self: lock.Self("liftoff destroy", func(string) string { return "" }, time.Now())},
	}
	cfg, err := config.Parse("dev", config.Values{"liftoff:target": config.Plain("aws"), "aws:region": config.Plain("eu-west-1")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Stack(ctx, "dev", nil, true); err != nil {
		t.Fatal(err)
	}
	stackExists := func() bool {
		_, err := eng.Stack(ctx, "dev", nil, false)
		return err == nil
	}

	res, err := Destroy(ctx, d, DestroyOptions{Config: cfg, SweepWait: time.Millisecond})
	if failure.ClassOf(err) != failure.Engine || !strings.Contains(err.Error(), "1 thing(s) left") {
		t.Fatalf("destroy with a leftover: %v", err)
	}
	if res.StateRemoved || !stackExists() {
		t.Error("the state went while something is left")
	}
	if len(res.Receipt.Removed) != 1 || res.Receipt.Removed[0].Name != "vol-pvc" ||
		len(res.Receipt.Left) != 1 || res.Receipt.Left[0].Name != "vol-locked" || !strings.Contains(res.Receipt.Left[0].Why, "UnauthorizedOperation") {
		t.Errorf("receipt: %+v", res.Receipt)
	}
	if _, ok := acct.tags["vol-other-project"]; !ok {
		t.Error("another project's volume was deleted")
	}

	// Permission granted: the rerun finishes and removes the state.
	delete(acct.refused, "vol-locked")
	res, err = Destroy(ctx, d, DestroyOptions{Config: cfg, SweepWait: time.Millisecond})
	if err != nil || !res.StateRemoved || stackExists() || !res.Receipt.Clean() {
		t.Fatalf("rerun: %+v %v", res, err)
	}

	// --force removes the state even with something left, and says so on the receipt.
	if _, err := eng.Stack(ctx, "dev", nil, true); err != nil {
		t.Fatal(err)
	}
	acct.tags["vol-new"], acct.refused["vol-new"] = mine, errors.New("AccessDenied")
	res, err = Destroy(ctx, d, DestroyOptions{Config: cfg, SweepWait: time.Millisecond, Force: true})
	if err != nil || !res.StateRemoved || len(res.Receipt.Left) != 1 {
		t.Fatalf("forced: %+v %v", res, err)
	}
}
