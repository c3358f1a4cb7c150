package launch

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// TestScaleDownDelayZero checks a stack's scaleDownDelay of 0 reaches the
// rollout client as 0 (park the old slot at once), not as the 5m default.
func TestScaleDownDelayZero(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	streams, _, _, _ := ui.Test()
	d := Deps{Printer: ui.NewPrinter(streams, ui.Options{}), Now: time.Now}
	for _, want := range []time.Duration{0, 2 * time.Minute} {
		c, err := Site{Kubeconfig: kc, Namespace: "shop", App: "shortener", ScaleDownDelay: want}.Client(d, lock.Holder{})
		if err != nil {
			t.Fatal(err)
		}
		if c.ScaleDownDelay != want {
			t.Errorf("scaleDownDelay %s reached the rollout as %s", want, c.ScaleDownDelay)
		}
	}
}
