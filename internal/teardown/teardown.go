// Package teardown removes what a stack leaves behind outside Pulumi's
// state, before and after the engine's destroy: the objects Kubernetes
// controllers turn into cloud resources (Services of type LoadBalancer,
// Ingresses, PersistentVolumeClaims and the volumes bound to them), and, on
// aws, resources found by the liftoff:stack tag. Each sweep returns a
// Receipt: what it removed and what is left, with why.
package teardown

import (
	"fmt"
	"sort"
	"strings"
)

// Item is one thing a sweep removed or left.
type Item struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Why is set on what is left: the last error, or what still holds it.
	Why string `json:"why,omitempty"`
}

func (i Item) String() string {
	if i.Why == "" {
		return i.Kind + " " + i.Name
	}
	return fmt.Sprintf("%s %s (%s)", i.Kind, i.Name, i.Why)
}

// Receipt is what a teardown did.
type Receipt struct {
	Removed []Item `json:"removed"`
	Left    []Item `json:"left"`
}

// Add appends other's items to r.
func (r *Receipt) Add(other *Receipt) {
	if other == nil {
		return
	}
	r.Removed = append(r.Removed, other.Removed...)
	r.Left = append(r.Left, other.Left...)
}

// Clean reports whether nothing is left.
func (r *Receipt) Clean() bool { return len(r.Left) == 0 }

// Text is the receipt for people: what was removed, counted by kind, and
// every item left with why.
func (r *Receipt) Text() string {
	var b strings.Builder
	counts := map[string]int{}
	for _, i := range r.Removed {
		counts[i.Kind]++
	}
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		return counts[kinds[i]] > counts[kinds[j]] || counts[kinds[i]] == counts[kinds[j]] && kinds[i] < kinds[j]
	})
	fmt.Fprintf(&b, "removed %d:", len(r.Removed))
	for _, k := range kinds {
		fmt.Fprintf(&b, "\n  %4d  %s", counts[k], k)
	}
	if r.Clean() {
		b.WriteString("\nleft: nothing")
		return b.String()
	}
	fmt.Fprintf(&b, "\nLEFT %d:", len(r.Left))
	for _, i := range r.Left {
		b.WriteString("\n  ! " + i.String())
	}
	return b.String()
}

// Reporter receives progress; *ui.Printer implements it.
type Reporter interface {
	Infof(format string, args ...any)
	Waiting(what string)
}
