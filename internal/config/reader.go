package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Reader reads typed values for Parse and for the targets' own parsing,
// collecting one error per bad key (each names the key, the value and
// the fix), so that every problem of a config is reported at once.
type Reader struct {
	values Values
	used   map[string]bool
	errs   Errors
}

// Take marks key as read and returns its value; an empty plain value counts
// as unset.
func (r *Reader) Take(key string) (Value, bool) {
	if r.used == nil {
		r.used = map[string]bool{}
	}
	r.used[key] = true
	v, ok := r.values[key]
	if ok && v.Known && v.Text == "" && !v.Secret {
		return v, false // an empty plain value means unset
	}
	return v, ok
}

func (r *Reader) ignore(keys ...string) {
	for _, k := range keys {
		if v, ok := r.values[k]; ok {
			r.Take(k)
			r.Fail(k, v, "only applies to preview stacks", "set previewOf, or remove it: liftoff config rm "+ShortName(k))
		}
	}
}

// Fail records a problem with key.
func (r *Reader) Fail(key string, v Value, problem, fix string) {
	shown := v.Text
	if v.Secret {
		shown = ""
	}
	r.errs = append(r.errs, &FieldError{Key: key, Value: shown, Problem: problem, Fix: fix})
}

// IsSet reports whether key has a value (without marking it read).
func (r *Reader) IsSet(key string) bool {
	v, ok := r.values[key]
	return ok && (v.Text != "" || v.Secret)
}

// Failed reports whether key (or one of its sub-keys) has a problem.
func (r *Reader) Failed(key string) bool { return len(r.errs.For(key)) > 0 }

// Check records a problem when ok is false and reports ok.
func (r *Reader) Check(ok bool, key, value, problem, fix string) bool {
	if !ok && problem != "" {
		r.errs = append(r.errs, &FieldError{Key: key, Value: value, Problem: problem, Fix: fix})
	}
	return ok
}

func (r *Reader) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(r.errs, func(a, b *FieldError) int { return strings.Compare(a.Key, b.Key) })
	return r.errs
}

func (r *Reader) validate(key string, v Value, text string, check func(string) error) bool {
	if check == nil || !v.Known && v.Secret {
		return true
	}
	if err := check(text); err != nil {
		fix := ""
		var p *problem
		if errors.As(err, &p) {
			fix = p.fix
		}
		r.Fail(key, v, err.Error(), fix)
		return false
	}
	return true
}

// Str reads a plain string, def when unset; check validates it.
func (r *Reader) Str(key, def string, check func(string) error) string {
	v, ok := r.Take(key)
	if !ok {
		return def
	}
	if v.Secret {
		r.Fail(key, v, "is stored as a secret but is not secret", "liftoff config set "+ShortName(key)+" VALUE (without --secret)")
		return def
	}
	if !r.validate(key, v, v.Text, check) {
		return def
	}
	return v.Text
}

// Enum reads one of allowed.
func (r *Reader) Enum(key, def string, allowed ...string) string {
	return r.Str(key, def, OneOf(allowed...))
}

// Int reads a whole number from lo to hi.
func (r *Reader) Int(key string, def, lo, hi int) int {
	s := r.Str(key, "", nil)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		r.Fail(key, Plain(s), fmt.Sprintf("must be a whole number from %d to %d", lo, hi), fmt.Sprintf("liftoff config set %s %d", ShortName(key), def))
		return def
	}
	return n
}

// Bool reads true or false.
func (r *Reader) Bool(key string, def bool) bool {
	s := r.Str(key, "", nil)
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		r.Fail(key, Plain(s), "must be true or false", fmt.Sprintf("liftoff config set %s %t", ShortName(key), def))
		return def
	}
	return b
}

// Duration reads a duration from lo to hi (whole days as "7d").
func (r *Reader) Duration(key string, def, lo, hi time.Duration) time.Duration {
	s := r.Str(key, "", nil)
	if s == "" {
		return def
	}
	d, err := ParseDuration(s)
	if err != nil || d < lo || d > hi {
		r.Fail(key, Plain(s), fmt.Sprintf("must be a duration from %s to %s", FormatDuration(lo), FormatDuration(hi)), fmt.Sprintf("liftoff config set %s %s", ShortName(key), FormatDuration(def)))
		return def
	}
	return d
}

// List reads a JSON list of strings (or a comma-separated string), each checked.
func (r *Reader) List(key string, def []string, check func(string) error) []string {
	v, ok := r.Take(key)
	if !ok {
		return def
	}
	var items []string
	if err := json.Unmarshal([]byte(v.Text), &items); err != nil {
		// A bare comma-separated string is accepted for convenience.
		if strings.HasPrefix(strings.TrimSpace(v.Text), "[") {
			r.Fail(key, v, "must be a list of strings", fmt.Sprintf(`liftoff config set %s '["a","b"]'`, ShortName(key)))
			return def
		}
		for _, s := range strings.Split(v.Text, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	}
	for i, it := range items {
		if !r.validate(fmt.Sprintf("%s[%d]", key, i), Plain(it), it, check) {
			return def
		}
	}
	return items
}

// Secret reads a value stored with --secret; its plaintext is checked when known.
func (r *Reader) Secret(key string, required bool, check func(string) error) Secret {
	v, ok := r.Take(key)
	if !ok {
		if required {
			r.Fail(key, Value{}, "is required here", "liftoff config set --secret "+ShortName(key)+" VALUE")
		}
		return Secret{}
	}
	if !v.Secret {
		r.Fail(key, Value{Secret: true}, "is stored in plain text", "store it encrypted: liftoff config set --secret "+ShortName(key)+" VALUE")
		return Secret{}
	}
	if v.Known && !r.validate(key, v, v.Text, check) {
		return Secret{}
	}
	return Secret{value: v.Text, set: true, known: v.Known}
}
