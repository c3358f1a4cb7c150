package config

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is one invalid key.
type FieldError struct {
	Key     string
	Value   string // masked for secrets
	Problem string
	Fix     string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(ShortName(e.Key))
	if e.Value != "" {
		fmt.Fprintf(&b, " = %q", e.Value)
	}
	b.WriteString(": " + e.Problem)
	if e.Fix != "" {
		b.WriteString(" (fix: " + e.Fix + ")")
	}
	return b.String()
}

// Errors is every problem found in one config.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	if len(lines) == 1 {
		return "invalid config: " + lines[0]
	}
	return fmt.Sprintf("invalid config (%d problems):\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// For returns the errors about one key (and its sub-keys).
func (es Errors) For(key string) Errors {
	var out Errors
	for _, e := range es {
		if e.Key == key || strings.HasPrefix(e.Key, key+"[") || strings.HasPrefix(e.Key, key+".") {
			out = append(out, e)
		}
	}
	return out
}

// AsErrors extracts field errors from err.
func AsErrors(err error) (Errors, bool) {
	var es Errors
	ok := errors.As(err, &es)
	return es, ok
}
