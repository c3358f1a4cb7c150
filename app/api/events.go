// Package api is the shortener's HTTP API, documented field for field in
// docs/api.md. Every response that is not a redirect is JSON, errors included.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/liftoff-dev/liftoff/app/events"
	"github.com/liftoff-dev/liftoff/app/store"
	"github.com/liftoff-dev/liftoff/app/validate"
)

// Events

type eventJSON struct {
	ID        int64           `json:"id"`
	URLID     *int64          `json:"url_id"`
	UserID    *int64          `json:"user_id"`
	EventType string          `json:"event_type"`
	Timestamp string          `json:"timestamp"`
	Details   json.RawMessage `json:"details"`
}

func eventOut(e store.Event) eventJSON {
	d := e.Details
	if len(d) == 0 || d[0] != '{' {
		d = json.RawMessage("{}") // always an object, whatever was stored
	}
	return eventJSON{e.ID, e.URLID, e.UserID, e.EventType, ts(e.Timestamp), d}
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	f := fields{}
	filter := store.EventFilter{URLID: queryID(r, f, "url_id"), UserID: queryID(r, f, "user_id")}
	if t := r.URL.Query().Get("event_type"); t != "" {
		filter.EventType = &t
	}
	listing(s, w, r, f, func(ctx context.Context, p store.Page, fn func(store.Event) error) error {
		// Read-your-writes: clicks buffered on this replica are written first.
		if err := s.Events.Flush(ctx); err != nil && !errors.Is(err, events.ErrClosed) {
			return fmt.Errorf("flush events: %w", err)
		}
		return s.Store.ListEvents(ctx, filter, p, fn)
	}, eventOut)
}

func (s *Server) createEvent(w http.ResponseWriter, r *http.Request) {
	obj, ae := decodeObject(r)
	if ae != nil {
		writeError(w, ae)
		return
	}
	f := fields{}
	urlID := obj.id(f, "url_id", true)
	userID := obj.id(f, "user_id", true)
	typ := obj.str(f, "event_type", true, validate.EventType)
	details := json.RawMessage("{}")
	if raw, ok := obj["details"]; ok && !isNull(raw) {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			f["details"] = "must be a JSON object"
		} else if p := validate.Details(m); p != "" {
			f["details"] = p
		} else if details, _ = json.Marshal(m); len(details) > validate.MaxDetails {
			f["details"] = fmt.Sprintf("must be at most %d bytes of JSON", validate.MaxDetails)
		}
	}
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	for _, ref := range []struct {
		table, field string
		id           int64
	}{{"urls", "url_id", *urlID}, {"users", "user_id", *userID}} {
		ok, err := s.Store.Exists(r.Context(), ref.table, ref.id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !ok {
			writeError(w, &apiError{Status: http.StatusNotFound, Msg: strings.TrimSuffix(ref.table, "s") + " not found",
				Fields: map[string]string{ref.field: "does not exist"}})
			return
		}
	}
	e, err := s.Store.CreateEvent(r.Context(), store.Event{URLID: urlID, UserID: userID, EventType: *typ, Details: details})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, eventOut(e))
}
