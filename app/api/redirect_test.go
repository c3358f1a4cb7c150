package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzClickDetails: the hand encoder always makes valid JSON that decodes to
// the three strings, with what jsonb cannot hold (invalid UTF-8, NUL) as U+FFFD.
func FuzzClickDetails(f *testing.F) {
	for _, s := range []string{"", "wrk/4.2", `a"b\c`, "\x00\x01\x1f\x7f", "héllo", "\xff\xfe", "日本\xe6\x97", "</script>&"} {
		f.Add("abc", s, s)
	}
	f.Fuzz(func(t *testing.T, code, ua, ref string) {
		b := clickDetails(code, ua, ref)
		var got map[string]string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		want := func(s string) string { // each invalid byte is one replacement, as encoding/json does it
			var out []rune
			for _, r := range s { // ranging a string yields U+FFFD per invalid byte
				if r == 0 {
					r = utf8.RuneError
				}
				out = append(out, r)
			}
			return string(out)
		}
		if len(got) != 3 || got["short_code"] != want(code) || got["user_agent"] != want(ua) || got["referrer"] != want(ref) {
			t.Fatalf("%q decoded to %q", b, got)
		}
		std, _ := json.Marshal(map[string]string{"short_code": code, "user_agent": ua, "referrer": ref})
		var stdGot map[string]string
		json.Unmarshal(std, &stdGot)
		if strings.ReplaceAll(stdGot["user_agent"], "\x00", "\ufffd") != got["user_agent"] {
			t.Fatalf("user agent %q: encoding/json has %q, clickDetails %q", ua, stdGot["user_agent"], got["user_agent"])
		}
		if !utf8.Valid(b) || strings.Contains(string(b), `\u0000`) {
			t.Fatalf("%q: not what jsonb accepts", b)
		}
	})
}

// TestFound: the plain path sends the same status and Location as
// http.Redirect, without its HTML body; other targets still go through it.
func TestFound(t *testing.T) {
	for _, target := range []string{
		"https://example.com/", "http://example.com/a?b=c&d=%20#f", "https://exämple.com/ü", "https://example.com/a b",
		"/relative", "HTTPS://EXAMPLE.COM/", "http:///nohost", "mailto:x@example.com", "https://",
	} {
		for _, method := range []string{"GET", "HEAD"} {
			r := httptest.NewRequest(method, "/abc", nil)
			std, ours := httptest.NewRecorder(), httptest.NewRecorder()
			http.Redirect(std, r, target, http.StatusFound)
			found(ours, r, target)
			if ours.Code != http.StatusFound || ours.Header().Get("Location") != std.Header().Get("Location") {
				t.Errorf("%s %q: %d %q, http.Redirect %d %q", method, target, ours.Code, ours.Header().Get("Location"), std.Code, std.Header().Get("Location"))
			}
			if plain := plainAbsolute(target); plain && ours.Body.Len() != 0 {
				t.Errorf("%q: plain target has a body %q", target, ours.Body)
			} else if !plain && ours.Body.String() != std.Body.String() {
				t.Errorf("%q: body %q, http.Redirect %q", target, ours.Body, std.Body)
			}
		}
	}
	if !plainAbsolute("https://example.com/") || plainAbsolute("https://exämple.com/") || plainAbsolute("/x") {
		t.Error("plainAbsolute misclassifies")
	}
}
