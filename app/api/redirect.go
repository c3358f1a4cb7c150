package api

import (
	"net/http"
	"unicode/utf8"
)

// found answers 302 with Location. A plain absolute http(s) URL (what
// validation admits) is written as it is, with no body: http.Redirect
// parses it, checks whether it is relative and writes an HTML note, which
// costs more than the rest of a cached redirect. Anything else goes through
// http.Redirect, which resolves relative targets and escapes non-ASCII.
func found(w http.ResponseWriter, r *http.Request, target string) {
	if !plainAbsolute(target) {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	w.Header()["Location"] = []string{target}
	w.WriteHeader(http.StatusFound)
}

func plainAbsolute(u string) bool {
	var rest string
	switch {
	case len(u) > 8 && u[:8] == "https://":
		rest = u[8:]
	case len(u) > 7 && u[:7] == "http://":
		rest = u[7:]
	default:
		return false
	}
	if rest[0] == '/' { // "http:///path" has no host
		return false
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= ' ' || u[i] >= 0x7f {
			return false
		}
	}
	return true
}

// clickDetails is a click event's details, {"short_code", "user_agent",
// "referrer"}, encoded by hand: encoding/json's reflection was a tenth of a
// cached redirect's own work.
func clickDetails(code, userAgent, referrer string) []byte {
	b := make([]byte, 0, 48+len(code)+len(userAgent)+len(referrer))
	b = append(b, `{"short_code":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, userAgent)
	b = append(b, `,"referrer":`...)
	b = appendJSONString(b, referrer)
	return append(b, '}')
}

const hex = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 and NUL become
// U+FFFD: PostgreSQL's jsonb refuses \u0000, and one refused click would
// fail its whole batch.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == 0:
				b = append(b, `\ufffd`...)
			case c < ' ':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
