// Package api is the shortener's HTTP API, documented field for field in
// docs/api.md. Every response that is not a redirect is JSON, errors included.
package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/liftoff-dev/liftoff/app/store"
	"github.com/liftoff-dev/liftoff/app/validate"
)

// URLs

type urlJSON struct {
	ID          int64   `json:"id"`
	UserID      int64   `json:"user_id"`
	ShortCode   string  `json:"short_code"`
	OriginalURL string  `json:"original_url"`
	Title       *string `json:"title"`
	IsActive    bool    `json:"is_active"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

func urlOut(u store.URL) urlJSON {
	return urlJSON{u.ID, u.UserID, u.ShortCode, u.OriginalURL, u.Title, u.IsActive, ts(u.CreatedAt), ts(u.UpdatedAt)}
}

func (s *Server) createURL(w http.ResponseWriter, r *http.Request) {
	obj, ae := decodeObject(r)
	if ae != nil {
		writeError(w, ae)
		return
	}
	f := fields{}
	userID := obj.id(f, "user_id", true)
	original := obj.str(f, "original_url", true, validate.URL)
	title := obj.str(f, "title", false, validate.Title)
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	u, err := s.Store.CreateURL(r.Context(), *userID, *original, title)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, &apiError{Status: http.StatusNotFound, Msg: "user not found", Fields: map[string]string{"user_id": "no user has this id"}})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.invalidate(r.Context(), u.ShortCode) // drop a cached "no such code" from a probe
	writeJSON(w, http.StatusCreated, urlOut(u))
}

func (s *Server) getURL(w http.ResponseWriter, r *http.Request) {
	id, ae := pathID(r, "id")
	if ae != nil {
		writeError(w, ae)
		return
	}
	u, err := s.Store.GetURL(r.Context(), id)
	reply(s, w, r, "url", http.StatusOK, u, err, urlOut)
}

func (s *Server) listURLs(w http.ResponseWriter, r *http.Request) {
	f := fields{}
	filter := store.URLFilter{UserID: queryID(r, f, "user_id")}
	if v := r.URL.Query().Get("is_active"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f["is_active"] = "must be true or false"
		}
		filter.Active = &b
	}
	listing(s, w, r, f, func(ctx context.Context, p store.Page, fn func(store.URL) error) error {
		return s.Store.ListURLs(ctx, filter, p, fn)
	}, urlOut)
}

func (s *Server) updateURL(w http.ResponseWriter, r *http.Request) {
	id, ae := pathID(r, "id")
	if ae != nil {
		writeError(w, ae)
		return
	}
	obj, ae := decodeObject(r)
	if ae != nil {
		writeError(w, ae)
		return
	}
	f := fields{}
	p := store.URLPatch{
		Title:       obj.str(f, "title", false, validate.Title),
		IsActive:    obj.boolean(f, "is_active"),
		OriginalURL: obj.str(f, "original_url", false, validate.URL),
	}
	for k := range obj {
		if k != "title" && k != "is_active" && k != "original_url" {
			f[k] = "cannot be changed (title, is_active, original_url can)"
		}
	}
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	u, err := s.Store.UpdateURL(r.Context(), id, p)
	if err == nil {
		s.invalidate(r.Context(), u.ShortCode)
	}
	reply(s, w, r, "url", http.StatusOK, u, err, urlOut)
}

func (s *Server) deleteURL(w http.ResponseWriter, r *http.Request) {
	id, ae := pathID(r, "id")
	if ae != nil {
		writeError(w, ae)
		return
	}
	u, err := s.Store.DeleteURL(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, errStatus(http.StatusNotFound, "url not found"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.invalidate(r.Context(), u.ShortCode)
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true, "id": id})
}
