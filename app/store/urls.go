// Package store is the shortener's PostgreSQL access: users, links and their
// events, through one pgx pool that is opened and warmed before traffic.
package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// URLs

const urlCols = "id, user_id, short_code, original_url, title, is_active, created_at, updated_at"

func scanURL(row pgx.CollectableRow) (URL, error) {
	var u URL
	err := row.Scan(&u.ID, &u.UserID, &u.ShortCode, &u.OriginalURL, &u.Title, &u.IsActive, &u.CreatedAt, &u.UpdatedAt)
	return u, err
}

const codeAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewCode returns an unguessable 7-character code (62^7, about 3.5e12 codes),
// drawn from crypto/rand with rejection sampling so every letter is equally likely.
func NewCode() string {
	out := make([]byte, 0, 7)
	buf := make([]byte, 16)
	for len(out) < 7 {
		rand.Read(buf) // never fails since Go 1.24
		for _, b := range buf {
			if b < 248 && len(out) < 7 { // 248 = 4*62: drop the biased tail
				out = append(out, codeAlphabet[int(b)%len(codeAlphabet)])
			}
		}
	}
	return string(out)
}

// CreateURL inserts a link with a fresh code and records its `created` event
// in the same transaction. A missing user gives ErrNotFound.
func (s *Store) CreateURL(ctx context.Context, userID int64, original string, title *string) (URL, error) {
	for range 5 {
		var u URL
		err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
			now := s.now()
			rows, err := tx.Query(ctx, `INSERT INTO urls (user_id, short_code, original_url, title, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $5) RETURNING `+urlCols, userID, NewCode(), original, title, now)
			if u, err = one(rows, err, scanURL); err != nil {
				return conflict(err)
			}
			details, _ := json.Marshal(map[string]string{"short_code": u.ShortCode, "original_url": u.OriginalURL})
			_, err = tx.Exec(ctx, "INSERT INTO events (url_id, user_id, event_type, timestamp, details) VALUES ($1, $2, 'created', $3, $4)",
				u.ID, u.UserID, now, details)
			return err
		})
		var c *ConflictError
		if errors.As(err, &c) && c.Field == "short_code" {
			continue // a collision: draw another code
		}
		return u, err
	}
	return URL{}, errors.New("no free short code after 5 attempts")
}

// GetURL reads one link.
func (s *Store) GetURL(ctx context.Context, id int64) (URL, error) {
	rows, err := s.Pool.Query(ctx, "SELECT "+urlCols+" FROM urls WHERE id = $1", id)
	return one(rows, err, scanURL)
}

// URLFilter narrows ListURLs.
type URLFilter struct {
	UserID *int64
	Active *bool
}

// ListURLs calls fn with each link of the page, by id, as it is read.
func (s *Store) ListURLs(ctx context.Context, f URLFilter, p Page, fn func(URL) error) error {
	return list(ctx, s, scanURL, fn, `SELECT `+urlCols+` FROM urls
		WHERE ($1::bigint IS NULL OR user_id = $1) AND ($2::boolean IS NULL OR is_active = $2)
		ORDER BY id`+limitOffset(p), f.UserID, f.Active)
}

// URLPatch holds the fields PUT /urls/{id} may change.
type URLPatch struct {
	Title       *string
	IsActive    *bool
	OriginalURL *string
}

// UpdateURL applies a patch and records one `updated` event per changed
// field. updated_at moves forward by at least one second, so it visibly
// advances at the API's second precision.
func (s *Store) UpdateURL(ctx context.Context, id int64, p URLPatch) (URL, error) {
	var u URL
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		now := s.now()
		rows, err := tx.Query(ctx, `UPDATE urls SET
				title = COALESCE($2, title), is_active = COALESCE($3, is_active), original_url = COALESCE($4, original_url),
				updated_at = GREATEST($5::timestamp, date_trunc('second', updated_at) + interval '1 second')
			WHERE id = $1 RETURNING `+urlCols, id, p.Title, p.IsActive, p.OriginalURL, now)
		if u, err = one(rows, err, scanURL); err != nil {
			return err
		}
		changes := map[string]any{}
		if p.Title != nil {
			changes["title"] = *p.Title
		}
		if p.IsActive != nil {
			changes["is_active"] = *p.IsActive
		}
		if p.OriginalURL != nil {
			changes["original_url"] = *p.OriginalURL
		}
		for field, v := range changes {
			details, _ := json.Marshal(map[string]any{"field": field, "new_value": v, "short_code": u.ShortCode})
			if _, err := tx.Exec(ctx, "INSERT INTO events (url_id, user_id, event_type, timestamp, details) VALUES ($1, $2, 'updated', $3, $4)",
				u.ID, u.UserID, now, details); err != nil {
				return err
			}
		}
		return nil
	})
	return u, err
}

// DeleteURL deletes a link and records its `deleted` event.
func (s *Store) DeleteURL(ctx context.Context, id int64) (URL, error) {
	var u URL
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "DELETE FROM urls WHERE id = $1 RETURNING "+urlCols, id)
		if u, err = one(rows, err, scanURL); err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]string{"reason": "user_requested", "short_code": u.ShortCode})
		_, err = tx.Exec(ctx, "INSERT INTO events (url_id, user_id, event_type, timestamp, details) VALUES ($1, $2, 'deleted', $3, $4)",
			u.ID, u.UserID, s.now(), details)
		return err
	})
	return u, err
}

// Resolve looks a code up for a redirect.
func (s *Store) Resolve(ctx context.Context, code string) (Target, error) {
	var t Target
	err := s.Pool.QueryRow(ctx, "SELECT id, user_id, original_url, is_active FROM urls WHERE short_code = $1", code).
		Scan(&t.URLID, &t.UserID, &t.OriginalURL, &t.Active)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

// Exists reports whether a row with id is in table (users or urls).
func (s *Store) Exists(ctx context.Context, table string, id int64) (bool, error) {
	if table != "users" && table != "urls" {
		return false, fmt.Errorf("exists: unknown table %q", table)
	}
	var ok bool
	err := s.Pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+table+" WHERE id = $1)", id).Scan(&ok)
	return ok, err
}

// ImportURLs inserts links keeping their ids and codes; existing ids or codes are left alone.
func (s *Store) ImportURLs(ctx context.Context, urls []URL) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, u := range urls {
			batch.Queue(`INSERT INTO urls (id, user_id, short_code, original_url, title, is_active, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
				u.ID, u.UserID, u.ShortCode, u.OriginalURL, u.Title, u.IsActive, u.CreatedAt, u.UpdatedAt)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return conflict(err)
		}
		return advance(ctx, tx, "urls")
	})
}
