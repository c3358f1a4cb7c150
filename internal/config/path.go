package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// SplitPath splits a property path such as "nodes[0].host" into its top-level
// key ("liftoff:nodes") and the steps below it (0, "host").
func SplitPath(p string) (string, []any, error) {
	p = FullName(p)
	ns, rest, _ := strings.Cut(p, ":")
	i := strings.IndexAny(rest, ".[")
	if i < 0 {
		return p, nil, nil
	}
	key, tail := ns+":"+rest[:i], rest[i:]
	var steps []any
	for tail != "" {
		switch tail[0] {
		case '.':
			tail = tail[1:]
			j := strings.IndexAny(tail, ".[")
			if j < 0 {
				j = len(tail)
			}
			if j == 0 {
				return "", nil, fmt.Errorf("path %q: empty name", p)
			}
			steps, tail = append(steps, tail[:j]), tail[j:]
		case '[':
			j := strings.IndexByte(tail, ']')
			if j < 0 {
				return "", nil, fmt.Errorf("path %q: missing ]", p)
			}
			n, err := strconv.Atoi(tail[1:j])
			if err != nil || n < 0 {
				return "", nil, fmt.Errorf("path %q: index %q is not a number", p, tail[1:j])
			}
			steps, tail = append(steps, n), tail[j+1:]
		default:
			return "", nil, fmt.Errorf("path %q: unexpected %q", p, tail[:1])
		}
	}
	return key, steps, nil
}

// PathValue types a value the way `pulumi config set --path` does: numbers
// and booleans become JSON numbers and booleans.
func PathValue(s string) any {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n
	}
	if b, err := strconv.ParseBool(s); err == nil && (s == "true" || s == "false") {
		return b
	}
	return s
}

// SetPath returns the JSON document cur with value set at steps.
func SetPath(cur string, steps []any, value any) (string, error) {
	var doc any
	if strings.TrimSpace(cur) != "" {
		if err := json.Unmarshal([]byte(cur), &doc); err != nil {
			return "", fmt.Errorf("current value is not a list or object: %w", err)
		}
	}
	doc, err := setIn(doc, steps, value)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(doc)
	return string(b), err
}

func setIn(doc any, steps []any, value any) (any, error) {
	if len(steps) == 0 {
		return value, nil
	}
	switch s := steps[0].(type) {
	case string:
		m, ok := doc.(map[string]any)
		if doc == nil {
			m, ok = map[string]any{}, true
		}
		if !ok {
			return nil, fmt.Errorf("cannot set field %q on a %T", s, doc)
		}
		v, err := setIn(m[s], steps[1:], value)
		m[s] = v
		return m, err
	case int:
		l, ok := doc.([]any)
		if doc == nil {
			l, ok = []any{}, true
		}
		if !ok {
			return nil, fmt.Errorf("cannot index a %T", doc)
		}
		if s > len(l) {
			return nil, fmt.Errorf("index %d is past the end of a list of %d", s, len(l))
		}
		if s == len(l) {
			l = append(l, nil)
		}
		v, err := setIn(l[s], steps[1:], value)
		l[s] = v
		return l, err
	}
	return nil, fmt.Errorf("bad path step %v", steps[0])
}
