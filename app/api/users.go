// Package api is the shortener's HTTP API, documented field for field in
// docs/api.md. Every response that is not a redirect is JSON, errors included.
package api

import (
	"errors"
	"net/http"

	"github.com/liftoff-dev/liftoff/app/seed"
	"github.com/liftoff-dev/liftoff/app/store"
	"github.com/liftoff-dev/liftoff/app/validate"
)

// Users

type userJSON struct {
	ID        int64  `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
}

func userOut(u store.User) userJSON {
	return userJSON{u.ID, u.Username, u.Email, ts(u.CreatedAt)}
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	obj, ae := decodeObject(r)
	if ae != nil {
		writeError(w, ae)
		return
	}
	f := fields{}
	username := obj.str(f, "username", true, validate.Username)
	email := obj.str(f, "email", true, validate.Email)
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	u, err := s.Store.CreateUser(r.Context(), *username, *email)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, userOut(u))
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	id, ae := pathID(r, "id")
	if ae != nil {
		writeError(w, ae)
		return
	}
	u, err := s.Store.GetUser(r.Context(), id)
	reply(s, w, r, "user", http.StatusOK, u, err, userOut)
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	listing(s, w, r, fields{}, s.Store.ListUsers, userOut)
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
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
	username := obj.str(f, "username", false, validate.Username)
	email := obj.str(f, "email", false, validate.Email)
	for k := range obj {
		if k != "username" && k != "email" {
			f[k] = "is not a field of a user (username, email)"
		}
	}
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	u, err := s.Store.UpdateUser(r.Context(), id, username, email)
	reply(s, w, r, "user", http.StatusOK, u, err, userOut)
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	id, ae := pathID(r, "id")
	if ae != nil {
		writeError(w, ae)
		return
	}
	codes, err := s.Store.DeleteUser(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, errStatus(http.StatusNotFound, "user not found"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.invalidate(r.Context(), codes...)
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true, "id": id, "urls_deleted": len(codes)})
}

// bulkUsers imports a CSV of users (id,username,email,created_at). Rows that
// already exist are counted and left unchanged; malformed rows are reported.
func (s *Server) bulkUsers(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 32<<20)
	file, _, err := r.FormFile("file")
	if err != nil {
		writeError(w, &apiError{Status: http.StatusBadRequest, Msg: "expected multipart/form-data with a CSV in field file",
			Fields: map[string]string{"file": "is required"}})
		return
	}
	defer file.Close()
	users, rejected, err := seed.ParseUsers(file)
	if err != nil {
		writeError(w, &apiError{Status: http.StatusUnprocessableEntity, Msg: err.Error(), Fields: map[string]string{"file": err.Error()}})
		return
	}
	if err := s.Store.ImportUsers(r.Context(), users); err != nil {
		s.fail(w, r, err)
		return
	}
	resp := map[string]any{"count": len(users)}
	if len(rejected) > 0 {
		resp["rejected"] = len(rejected)
		resp["errors"] = rejected[:min(len(rejected), 20)]
	}
	writeJSON(w, http.StatusCreated, resp)
}
