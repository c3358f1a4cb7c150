// Package cost is the shape of a stack's monthly cost estimate, which a
// target computes from its config and its own price table (Target.Cost):
// an estimate for a founder's decision, not an invoice.
package cost

import (
	"fmt"
	"strings"
)

// Line is one resource class.
type Line struct {
	Class  string  `json:"class"`
	Detail string  `json:"detail"`
	USD    float64 `json:"usd_per_month"`
	// Unknown is set when the table has no price; USD is 0 and left out of the total.
	Unknown bool `json:"unknown,omitempty"`
}

// Estimate is a monthly estimate.
type Estimate struct {
	Lines []Line  `json:"lines"`
	Total float64 `json:"usd_per_month"`
	Notes string  `json:"notes"`
}

// String renders the estimate as a table for people.
func (e *Estimate) String() string {
	var b strings.Builder
	b.WriteString("Estimated monthly cost (USD):\n")
	for _, l := range e.Lines {
		if l.Unknown {
			fmt.Fprintf(&b, "  %-22s %9s  %s\n", l.Class, "?", l.Detail)
			continue
		}
		fmt.Fprintf(&b, "  %-22s %9.2f  %s\n", l.Class, l.USD, l.Detail)
	}
	fmt.Fprintf(&b, "  %-22s %9.2f\n  (%s)", "total", e.Total, e.Notes)
	return b.String()
}
