package ui

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// ValidateEvents checks that every line of out is an event valid against docs/events.schema.json.
func validateEvents(t *testing.T, out []byte) []Event {
	t.Helper()
	sch := compileSchema(t)
	var evs []Event
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(sc.Bytes()))
		if err != nil {
			t.Fatalf("not JSON: %s", sc.Text())
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("event %s: %v", sc.Text(), err)
		}
		var e Event
		json.Unmarshal(sc.Bytes(), &e)
		evs = append(evs, e)
	}
	return evs
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("../../docs/events.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("events.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("events.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func TestJSONEvents(t *testing.T) {
	s, _, out, errOut := Test()
	p := NewPrinter(s, Options{JSON: true, Heartbeat: 20 * time.Millisecond})
	p.StartPhase("infrastructure")
	p.ResourceStarted("urn:a", "aws:ec2/vpc:Vpc", "main", "create")
	time.Sleep(1200 * time.Millisecond) // the heartbeat checks once a second at most
	p.ResourceDone("urn:a", "aws:ec2/vpc:Vpc", "main", "create", false)
	p.Diagnostic("warning", "spot capacity is low")
	p.Progress("push layer", 10, 100, "bytes")
	p.Infof("broke a stale lock")
	p.EndPhase("infrastructure", nil)
	p.StartPhase("build")
	p.EndPhase("build", ErrSkipped)
	p.Summary("Stack dev is up", map[string]any{"url": "http://x"}, map[string]any{"phases": []PhaseTiming{{Name: "infrastructure", Status: "ok", Millis: 5}}})
	p.Result("", map[string]any{"digest": "sha256:abc"})
	p.Error(failure.New(failure.Locked, errors.New("stack dev is locked"), "wait"))
	p.Close()
	if errOut.Len() != 0 {
		t.Errorf("--json wrote to stderr: %q", errOut.String())
	}
	evs := validateEvents(t, out.Bytes())
	types := []string{}
	for _, e := range evs {
		types = append(types, e.Type)
	}
	got := strings.Join(types, ",")
	if !strings.Contains(got, "phase_start,resource,heartbeat") {
		t.Errorf("no heartbeat while waiting on a resource: %s", got)
	}
	last := evs[len(evs)-1]
	if last.Type != TypeError || last.Class != "locked" || last.ExitCode != 4 || last.Fix != "wait" {
		t.Errorf("error event: %+v", last)
	}
	for _, e := range evs {
		if e.Type == TypeHeartbeat && !strings.Contains(e.Waiting, "aws:ec2/vpc:Vpc main") {
			t.Errorf("heartbeat does not say what it waits for: %+v", e)
		}
		if e.Type == TypePhaseEnd && e.Phase == "build" && e.Status != "skipped" {
			t.Errorf("skipped phase: %+v", e)
		}
	}
}

func TestPlainOutput(t *testing.T) {
	s, _, out, errOut := Test()
	p := NewPrinter(s, Options{Heartbeat: 20 * time.Millisecond})
	p.StartPhase("deploy")
	p.Waiting("green pods ready (1/2)")
	time.Sleep(1100 * time.Millisecond)
	p.ResourceDone("urn:b", "kubernetes:core/v1:Namespace", "app", "same", false)
	p.ResourceDone("urn:c", "kubernetes:core/v1:Secret", "env", "update", false)
	p.EndPhase("deploy", errors.New("green never became ready"))
	p.Result("https://sho.rt", nil)
	p.Error(failure.New(failure.Health, errors.New("green never became ready"), "see the pod events above"))
	p.Close()
	e := errOut.String()
	for _, want := range []string{"==> deploy", "… deploy", "waiting on green pods ready (1/2)", "update   kubernetes:core/v1:Secret env", "✗ deploy", "error: green never became ready", "fix: see the pod events above"} {
		if !strings.Contains(e, want) {
			t.Errorf("stderr lacks %q:\n%s", want, e)
		}
	}
	if strings.Contains(e, "Namespace") {
		t.Error("unchanged resource shown without --verbose")
	}
	if strings.Contains(e, "\033[") {
		t.Error("terminal escapes on a non-terminal")
	}
	if out.String() != "https://sho.rt\n" {
		t.Errorf("stdout = %q: results only", out.String())
	}
}

func TestProgressThinned(t *testing.T) {
	s, _, _, errOut := Test()
	p := NewPrinter(s, Options{})
	for i := int64(0); i <= 1000; i++ {
		p.Progress("push r/app", i*1024, 1000*1024, "bytes")
	}
	p.Progress("push r/app", 1000*1024, 1000*1024, "bytes")
	if n := strings.Count(errOut.String(), "push r/app"); n != 5 {
		t.Errorf("%d progress lines for one upload, want 5 (0%%, 25%%, 50%%, 75%%, done):\n%s", n, errOut)
	}
	s2, _, out, _ := Test()
	j := NewPrinter(s2, Options{JSON: true})
	for i := int64(0); i <= 1000; i++ {
		j.Progress("push r/app", i, 1000, "bytes")
	}
	if n := strings.Count(out.String(), `"type":"progress"`); n != 2 {
		t.Errorf("%d progress events within 500ms, want the first and the last", n)
	}
}

func TestLiveView(t *testing.T) {
	s, _, _, errOut := Test()
	s.ErrTTY = true
	p := NewPrinter(s, Options{Redraw: 10 * time.Millisecond})
	p.StartPhase("infrastructure")
	p.SetTotal(40)
	p.ResourceStarted("urn:eks", "aws:eks/cluster:Cluster", "main", "create")
	time.Sleep(60 * time.Millisecond)
	p.EndPhase("infrastructure", nil)
	p.Close()
	if e := errOut.String(); !strings.Contains(e, "\r\033[K") || !strings.Contains(e, "0/40 done") || !strings.Contains(e, "waiting on aws:eks/cluster:Cluster main") {
		t.Errorf("live view: %q", e)
	}
}
