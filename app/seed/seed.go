// Package seed reads the contract's CSV formats (users, urls, events) and
// loads them idempotently: existing ids are left alone, sequences advance.
package seed

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/liftoff-dev/liftoff/app/store"
	"github.com/liftoff-dev/liftoff/app/validate"
)

// ParseTime accepts the seed data's "2006-01-02 15:04:05" and the API's ISO form.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", s)
}

// table reads a CSV with a header naming at least want.
type table struct {
	r    *csv.Reader
	cols map[string]int
	rec  []string
	line int
}

func open(rd io.Reader, want ...string) (*table, error) {
	r := csv.NewReader(rd)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, errors.New("the CSV is empty or unreadable")
	}
	t := &table{r: r, cols: map[string]int{}, line: 1}
	for i, h := range header {
		t.cols[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	for _, h := range want {
		if _, ok := t.cols[h]; !ok {
			return nil, fmt.Errorf("the CSV header must include %s (missing %s)", strings.Join(want, ","), h)
		}
	}
	return t, nil
}

// next reads a row; io.EOF ends the table.
func (t *table) next() error {
	t.line++
	rec, err := t.r.Read()
	t.rec = rec
	return err
}

func (t *table) get(col string) string {
	if i := t.cols[col]; i < len(t.rec) {
		return strings.TrimSpace(t.rec[i])
	}
	return ""
}

// MaxID is the largest id an import may carry: an import moves the id
// sequence past its largest id, and ids near the top of bigint would leave
// the sequence no room (every later insert would fail).
const MaxID = 1 << 40

func (t *table) id(col string) (int64, error) {
	v, err := strconv.ParseInt(t.get(col), 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%s must be a positive integer", col)
	}
	if v > MaxID {
		return 0, fmt.Errorf("%s must be at most %d (imported ids move the id sequence past them)", col, int64(MaxID))
	}
	return v, nil
}

// ParseUsers reads id,username,email,created_at rows. Malformed rows are
// skipped and described in rejected; a bad header is an error.
func ParseUsers(rd io.Reader) (users []store.User, rejected []string, err error) {
	t, err := open(rd, "id", "username", "email", "created_at")
	if err != nil {
		return nil, nil, err
	}
	for {
		if err := t.next(); err == io.EOF {
			return users, rejected, nil
		} else if err != nil {
			rejected = append(rejected, fmt.Sprintf("line %d: %v", t.line, err))
			continue
		}
		u, err := userRow(t)
		if err != nil {
			rejected = append(rejected, fmt.Sprintf("line %d: %v", t.line, err))
			continue
		}
		users = append(users, u)
	}
}

func userRow(t *table) (store.User, error) {
	id, err := t.id("id")
	if err != nil {
		return store.User{}, err
	}
	name, email := t.get("username"), t.get("email")
	if p := validate.Username(name); p != "" {
		return store.User{}, errors.New("username " + p)
	}
	if p := validate.Email(email); p != "" {
		return store.User{}, errors.New("email " + p)
	}
	created, err := ParseTime(t.get("created_at"))
	if err != nil {
		return store.User{}, errors.New("created_at must look like 2025-08-11 22:29:20")
	}
	return store.User{ID: id, Username: name, Email: email, CreatedAt: created}, nil
}

// ParseURLs reads id,user_id,short_code,original_url,title,is_active,created_at,updated_at rows.
func ParseURLs(rd io.Reader) (urls []store.URL, rejected []string, err error) {
	t, err := open(rd, "id", "user_id", "short_code", "original_url", "title", "is_active", "created_at", "updated_at")
	if err != nil {
		return nil, nil, err
	}
	for {
		if err := t.next(); err == io.EOF {
			return urls, rejected, nil
		} else if err != nil {
			rejected = append(rejected, fmt.Sprintf("line %d: %v", t.line, err))
			continue
		}
		u, err := urlRow(t)
		if err != nil {
			rejected = append(rejected, fmt.Sprintf("line %d: %v", t.line, err))
			continue
		}
		urls = append(urls, u)
	}
}

func urlRow(t *table) (store.URL, error) {
	var u store.URL
	var err error
	if u.ID, err = t.id("id"); err != nil {
		return u, err
	}
	if u.UserID, err = t.id("user_id"); err != nil {
		return u, err
	}
	u.ShortCode, u.OriginalURL = t.get("short_code"), t.get("original_url")
	if u.ShortCode == "" || u.OriginalURL == "" {
		return u, errors.New("short_code and original_url are required")
	}
	if title := t.get("title"); title != "" {
		u.Title = &title
	}
	if u.IsActive, err = strconv.ParseBool(strings.ToLower(t.get("is_active"))); err != nil {
		return u, errors.New("is_active must be True or False")
	}
	if u.CreatedAt, err = ParseTime(t.get("created_at")); err != nil {
		return u, err
	}
	if u.UpdatedAt, err = ParseTime(t.get("updated_at")); err != nil {
		return u, err
	}
	return u, nil
}

// ParseEvents reads id,url_id,user_id,event_type,timestamp,details rows; details is a JSON object.
func ParseEvents(rd io.Reader) (evs []store.Event, rejected []string, err error) {
	t, err := open(rd, "id", "url_id", "user_id", "event_type", "timestamp", "details")
	if err != nil {
		return nil, nil, err
	}
	for {
		if err := t.next(); err == io.EOF {
			return evs, rejected, nil
		} else if err != nil {
			rejected = append(rejected, fmt.Sprintf("line %d: %v", t.line, err))
			continue
		}
		e, err := eventRow(t)
		if err != nil {
			rejected = append(rejected, fmt.Sprintf("line %d: %v", t.line, err))
			continue
		}
		evs = append(evs, e)
	}
}

func eventRow(t *table) (store.Event, error) {
	var e store.Event
	var err error
	if e.ID, err = t.id("id"); err != nil {
		return e, err
	}
	for _, c := range []struct {
		col string
		dst **int64
	}{{"url_id", &e.URLID}, {"user_id", &e.UserID}} {
		if t.get(c.col) == "" {
			continue
		}
		v, err := t.id(c.col)
		if err != nil {
			return e, err
		}
		*c.dst = &v
	}
	if e.EventType = t.get("event_type"); e.EventType == "" {
		return e, errors.New("event_type is empty")
	}
	if e.Timestamp, err = ParseTime(t.get("timestamp")); err != nil {
		return e, err
	}
	var obj map[string]any
	if d := t.get("details"); d != "" {
		if err := json.Unmarshal([]byte(d), &obj); err != nil {
			return e, errors.New("details must be a JSON object")
		}
	}
	if obj == nil {
		obj = map[string]any{}
	}
	e.Details, _ = json.Marshal(obj)
	return e, nil
}

// Report says what a load did.
type Report struct {
	Users, URLs, Events int
	Rejected            []string
}

// Load reads users.csv, urls.csv and events.csv from dir and inserts them.
// Running it twice changes nothing the second time.
func Load(ctx context.Context, s *store.Store, dir string) (Report, error) {
	var rep Report
	read := func(name string, parse func(io.Reader) error) error {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := parse(f); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	var users []store.User
	var urls []store.URL
	var evs []store.Event
	note := func(name string, rej []string) {
		for _, r := range rej {
			rep.Rejected = append(rep.Rejected, name+": "+r)
		}
	}
	if err := read("users.csv", func(r io.Reader) (err error) {
		var rej []string
		users, rej, err = ParseUsers(r)
		note("users.csv", rej)
		return err
	}); err != nil {
		return rep, err
	}
	if err := read("urls.csv", func(r io.Reader) (err error) {
		var rej []string
		urls, rej, err = ParseURLs(r)
		note("urls.csv", rej)
		return err
	}); err != nil {
		return rep, err
	}
	if err := read("events.csv", func(r io.Reader) (err error) {
		var rej []string
		evs, rej, err = ParseEvents(r)
		note("events.csv", rej)
		return err
	}); err != nil {
		return rep, err
	}
	if err := s.ImportUsers(ctx, users); err != nil {
		return rep, fmt.Errorf("import users: %w", err)
	}
	if err := s.ImportURLs(ctx, urls); err != nil {
		return rep, fmt.Errorf("import urls: %w", err)
	}
	if err := s.ImportEvents(ctx, evs); err != nil {
		return rep, fmt.Errorf("import events: %w", err)
	}
	rep.Users, rep.URLs, rep.Events = len(users), len(urls), len(evs)
	return rep, nil
}
