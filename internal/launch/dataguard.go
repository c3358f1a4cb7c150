package launch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/target"
)

// Ops of a plan that take a resource away.
var losingOps = map[string]bool{"replace": true, "create-replacement": true, "delete-replaced": true, "delete": true}

// guardData runs before the engine changes anything: unless allowed, a plan
// that would replace or delete what holds data (the target says what does)
// is refused with what would be lost and the way out. The plan is
// previewed only when the config or liftoff changed since the last guarded
// up of this stack from this machine: an up with nothing to do pays nothing.
func guardData(ctx context.Context, d Deps, tg target.Target, st *engine.Stack, cfg *config.Stack, allow bool) (done func(), err error) {
	mark := d.StackLock.Path(d.Engine.Project(), cfg.Name) + ".guarded"
	sum := planInputs(cfg)
	done = func() { os.WriteFile(mark, []byte(sum), 0o600) }
	if allow {
		d.Printer.Warnf("--allow-data-replacement: the plan is not checked for changes that lose data")
		return done, nil
	}
	if b, err := os.ReadFile(mark); err == nil && string(b) == sum {
		return done, nil
	}
	if err := os.MkdirAll(filepath.Dir(mark), 0o700); err != nil {
		return nil, fmt.Errorf("data guard: %w", err)
	}
	d.Printer.Infof("the config changed since the last up: checking the plan for changes that would lose data")
	if _, err := st.Preview(ctx, d.Printer); err != nil {
		return nil, fmt.Errorf("plan the change: %w", err)
	}
	var lost []string
	for _, s := range st.Steps() {
		if !losingOps[s.Op] {
			continue
		}
		if what := tg.HoldsData(s); what != "" {
			lost = append(lost, fmt.Sprintf("%s %s %s: %s", s.Op, s.Type, s.Name, what))
		}
	}
	if len(lost) > 0 {
		return nil, failure.New(failure.Config,
			fmt.Errorf("the plan would lose data, so nothing was changed:\n  %s", strings.Join(lost, "\n  ")),
			"undo the change (liftoff config set ...), or move the data: liftoff db backup, liftoff up --allow-data-replacement, then liftoff db restore NAME (docs/data.md)")
	}
	return done, nil
}

// planInputs identifies what the plan depends on besides the live state:
// the parsed config (secrets masked) and the liftoff that runs it.
func planInputs(cfg *config.Stack) string {
	h := sha256.New()
	json.NewEncoder(h).Encode(cfg)
	if exe, err := os.Executable(); err == nil {
		if st, err := os.Stat(exe); err == nil {
			fmt.Fprintf(h, "%s %d %d", exe, st.Size(), st.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
