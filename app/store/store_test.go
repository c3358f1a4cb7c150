package store_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-dev/liftoff/app/migrate"
	"github.com/liftoff-dev/liftoff/app/store"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestInsertEventsMatchesCreateEvent: the hand-encoded binary COPY stores
// exactly what pgx's own encoding of the same event stores, for NULL ids,
// sub-microsecond and pre-2000 times, a zoned time and unicode details.
func TestInsertEventsMatchesCreateEvent(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	st, err := store.Open(ctx, pg.URL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := migrate.Apply(ctx, st.Pool); err != nil {
		t.Fatal(err)
	}
	id := func(v int64) *int64 { return &v }
	paris, _ := time.LoadLocation("Europe/Paris")
	if paris == nil {
		paris = time.FixedZone("UTC+1", 3600)
	}
	cases := []store.Event{
		{URLID: id(7), UserID: id(9), EventType: "click", Timestamp: time.Date(2026, 12, 1, 18, 0, 0, 123456789, time.UTC), Details: json.RawMessage(`{"short_code":"abc","user_agent":"wrk/4.2","referrer":""}`)},
		{URLID: nil, UserID: nil, EventType: "deleted", Timestamp: time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC), Details: json.RawMessage(`{}`)},
		{URLID: id(-1), UserID: id(1 << 62), EventType: "naïve ✓", Timestamp: time.Date(2026, 6, 1, 12, 0, 0, 500, paris), Details: json.RawMessage(`{"k":"日本","n":[1,2.5,null],"b":true}`)},
	}
	if err := st.InsertEvents(ctx, cases); err != nil {
		t.Fatal(err)
	}
	for _, e := range cases {
		if _, err := st.CreateEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var all []store.Event
	err = st.ListEvents(ctx, store.EventFilter{}, store.Page{}, func(e store.Event) error { all = append(all, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2*len(cases) {
		t.Fatalf("%d events stored, want %d", len(all), 2*len(cases))
	}
	for i := range cases {
		copied, created := all[i], all[len(cases)+i]
		copied.ID, created.ID = 0, 0
		cj, _ := json.Marshal(copied)
		pj, _ := json.Marshal(created)
		if string(cj) != string(pj) {
			t.Errorf("event %d:\n COPY   %s\n INSERT %s", i, cj, pj)
		}
	}
	if err := st.InsertEvents(ctx, []store.Event{{EventType: "x", Timestamp: time.Now()}}); err == nil {
		t.Error("an event without details was stored")
	}
}

// TestStatementTimeout: a query past the store's statement timeout is
// cancelled by the server, so a stalled query frees its connection.
func TestStatementTimeout(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, testenv.StartPostgres(t).URL, store.Options{StatementTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	_, err = st.Pool.Exec(ctx, "SELECT pg_sleep(5)")
	if err == nil || !strings.Contains(err.Error(), "statement timeout") || time.Since(start) > 3*time.Second {
		t.Fatalf("pg_sleep(5) under a 200ms statement timeout: %v after %s", err, time.Since(start))
	}
}
