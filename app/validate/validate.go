// Package validate holds the contract's field rules, shared by the API and
// the CSV loaders. Each check returns "" for a good value, or the problem.
package validate

import (
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

var emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$`)

// Email: something@host.tld, at most 254 bytes.
func Email(s string) string {
	if len(s) > 254 || !emailRE.MatchString(s) {
		return "must be an email address like name@example.com"
	}
	return ""
}

// Username: not blank, at most 64 characters, no control characters.
func Username(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "must not be empty"
	case utf8.RuneCountInString(s) > 64:
		return "must be at most 64 characters"
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "must not contain control characters"
	}
	return ""
}

// Title: at most 200 characters, no NUL (PostgreSQL text cannot hold it).
func Title(s string) string {
	switch {
	case utf8.RuneCountInString(s) > 200:
		return "must be at most 200 characters"
	case strings.ContainsRune(s, 0):
		return "must not contain NUL characters"
	}
	return ""
}

// MaxDetails is the largest an event's details may be, encoded: listings
// return up to a page of events, and a page must fit the pod's memory.
const MaxDetails = 8 << 10

// Details: a JSON object whose keys and strings hold no NUL (JSONB rejects \u0000).
func Details(v any) string {
	switch x := v.(type) {
	case string:
		if strings.ContainsRune(x, 0) {
			return "must not contain NUL characters"
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) {
				return "must not contain NUL characters"
			}
			if p := Details(e); p != "" {
				return p
			}
		}
	case []any:
		for _, e := range x {
			if p := Details(e); p != "" {
				return p
			}
		}
	}
	return ""
}

// URL: an absolute http(s) URL with a host, no whitespace, at most 2048
// bytes, and no user info: https://bank.example@evil.example reads as the
// bank's to a person and goes to evil.example, a phishing link's favourite
// shape.
func URL(s string) string {
	const bad = "must be an absolute http(s) URL with a host, like https://example.com/page"
	if len(s) > 2048 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return bad
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return bad
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		return "must not carry a user name or password before the host (user@host): such links hide where they go"
	}
	return ""
}

// EventType: one word of at most 64 characters.
func EventType(s string) string {
	if s == "" || len(s) > 64 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' }) {
		return "must be a non-empty word of at most 64 characters, like click"
	}
	return ""
}
