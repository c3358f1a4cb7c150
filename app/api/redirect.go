package api

import (
	"context"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/liftoff-dev/liftoff/app/cache"
	"github.com/liftoff-dev/liftoff/app/store"
)

// redirect is the hot path: cache, then database; the click event is
// buffered, never written on the way.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	if limited(w, s.RedirectLimit, ClientIP(r, s.TrustedProxies)) {
		return
	}
	if !validCode(code) {
		writeError(w, errStatus(http.StatusNotFound, "short code not found"))
		return
	}
	ctx := r.Context()
	e, hit, _ := s.Cache.Get(ctx, code)
	if !hit {
		t, err := s.Store.Resolve(ctx, code)
		switch {
		case errors.Is(err, store.ErrNotFound):
			e = cache.Entry{Missing: true}
		case err != nil:
			s.fail(w, r, err)
			return
		default:
			e = cache.Entry{URLID: t.URLID, UserID: t.UserID, URL: t.OriginalURL, Active: t.Active}
		}
		s.Cache.Set(ctx, code, e)
	}
	if e.Missing || !e.Active {
		writeError(w, errStatus(http.StatusNotFound, "short code not found"))
		return
	}
	if r.Method == http.MethodGet {
		details := clickDetails(code, clip(r.UserAgent(), 256), clip(r.Referer(), 512))
		urlID, userID := e.URLID, e.UserID
		err := s.recordClick(ctx, store.Event{URLID: &urlID, UserID: &userID, EventType: "click", Timestamp: time.Now().UTC(), Details: details})
		if err != nil {
			w.Header().Set("Retry-After", "1")
			s.Log.WarnContext(ctx, "click not recorded", "error", err.Error(), "code", code)
			writeError(w, errStatus(http.StatusServiceUnavailable, "cannot record the click right now; retry"))
			return
		}
		s.Metrics.Redirects.Inc()
	}
	found(w, r, e.URL)
}

// recordClick queues a click and, with DurableClicks, waits until it is
// written: the redirects waiting at once share one write (the buffer's
// flush takes every click queued by then), so the batch grows with the
// load. The wait is bounded by EnqueueWait. A slow database never fails a
// redirect whose click is queued: once the wait runs out, the redirect is
// answered, the click stays queued (written when the database answers, and
// at shutdown within its flush budget) and shortener_clicks_late_total
// counts it. Only a click that cannot be queued (the buffer stayed full for
// the whole wait) fails its redirect, with 503 and Retry-After, so no
// answered redirect's click is dropped.
func (s *Server) recordClick(ctx context.Context, e store.Event) error {
	if !s.DurableClicks {
		return s.Events.AddWithin(ctx, e, s.EnqueueWait)
	}
	ctx, cancel := context.WithTimeout(ctx, s.EnqueueWait)
	defer cancel()
	if err := s.Events.Add(ctx, e); err != nil {
		return err
	}
	if err := s.Events.Flush(ctx); err != nil {
		s.Metrics.ClicksLate.Inc()
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func validCode(c string) bool {
	if len(c) < 1 || len(c) > 32 {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

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
