// Package store is the shortener's PostgreSQL access: users, links and their
// events, through one pgx pool that is opened and warmed before traffic.
package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound means the row does not exist.
var ErrNotFound = errors.New("not found")

// ConflictError means a unique field already holds the value.
type ConflictError struct{ Field string }

func (e *ConflictError) Error() string { return e.Field + " already exists" }

// User is a user account.
type User struct {
	ID        int64
	Username  string
	Email     string
	CreatedAt time.Time
}

// URL is a short link.
type URL struct {
	ID          int64
	UserID      int64
	ShortCode   string
	OriginalURL string
	Title       *string
	IsActive    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Event is one entry of the event log.
type Event struct {
	ID        int64
	URLID     *int64
	UserID    *int64
	EventType string
	Timestamp time.Time
	Details   json.RawMessage
}

// Target is what a redirect needs to know about a code.
type Target struct {
	URLID       int64
	UserID      int64
	OriginalURL string
	Active      bool
}

// Page bounds a listing; Limit 0 means no limit.
type Page struct {
	Limit  int
	Offset int
}

// Store runs the queries.
type Store struct {
	Pool *pgxpool.Pool
	// Now is the clock for event timestamps; tests pin it.
	Now func() time.Time
}

// Options configure Open.
type Options struct {
	// MinConns are established before Open returns, so the first burst of
	// requests finds them ready. Overridden by pool_min_conns in the URL.
	MinConns int32
	MaxConns int32
	Tracer   pgx.QueryTracer
}

// Open creates the pool and warms it: MinConns connections are established
// and pinged before it returns.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", redactErr(err, url))
	}
	if !strings.Contains(url, "pool_max_conns") && o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if !strings.Contains(url, "pool_min_conns") && o.MinConns > 0 {
		cfg.MinConns = min(o.MinConns, cfg.MaxConns)
	}
	cfg.HealthCheckPeriod = 5 * time.Second
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	if o.Tracer != nil {
		cfg.ConnConfig.Tracer = o.Tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	if err := warm(ctx, pool, int(cfg.MinConns)); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{Pool: pool, Now: time.Now}, nil
}

// warm holds n connections at once, so n are open when traffic arrives.
func warm(ctx context.Context, pool *pgxpool.Pool, n int) error {
	n = max(n, 1)
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("connect to the database: %w", err)
		}
		conns = append(conns, c)
		if err := c.Ping(ctx); err != nil {
			return fmt.Errorf("ping the database: %w", err)
		}
	}
	return nil
}

// redactErr keeps a password in the URL out of error messages.
func redactErr(err error, url string) error {
	msg := err.Error()
	if i := strings.Index(url, "://"); i >= 0 {
		if at := strings.LastIndex(url, "@"); at > i {
			if colon := strings.Index(url[i+3:at], ":"); colon >= 0 {
				msg = strings.ReplaceAll(msg, url[i+3+colon+1:at], "****")
			}
		}
	}
	return errors.New(msg)
}

// Close closes the pool.
func (s *Store) Close() { s.Pool.Close() }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.Pool.Ping(ctx) }

func (s *Store) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

func limitOffset(p Page) string {
	if p.Limit <= 0 {
		return fmt.Sprintf(" OFFSET %d", p.Offset)
	}
	return fmt.Sprintf(" LIMIT %d OFFSET %d", p.Limit, p.Offset)
}

func conflict(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" {
		switch {
		case strings.Contains(pg.ConstraintName, "username"):
			return &ConflictError{Field: "username"}
		case strings.Contains(pg.ConstraintName, "email"):
			return &ConflictError{Field: "email"}
		case strings.Contains(pg.ConstraintName, "short_code"):
			return &ConflictError{Field: "short_code"}
		}
		return &ConflictError{Field: pg.ConstraintName}
	}
	if errors.As(err, &pg) && pg.Code == "23503" {
		return ErrNotFound
	}
	return err
}

func one[T any](rows pgx.Rows, err error, scan pgx.RowToFunc[T]) (T, error) {
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := pgx.CollectExactlyOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, ErrNotFound
	}
	return v, err
}

// Users

const userCols = "id, username, email, created_at"

func scanUser(row pgx.CollectableRow) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.CreatedAt)
	return u, err
}

// CreateUser inserts a user.
func (s *Store) CreateUser(ctx context.Context, username, email string) (User, error) {
	rows, err := s.Pool.Query(ctx, "INSERT INTO users (username, email, created_at) VALUES ($1, $2, $3) RETURNING "+userCols, username, email, s.now())
	u, err := one(rows, err, scanUser)
	return u, conflict(err)
}

// GetUser reads one user.
func (s *Store) GetUser(ctx context.Context, id int64) (User, error) {
	rows, err := s.Pool.Query(ctx, "SELECT "+userCols+" FROM users WHERE id = $1", id)
	return one(rows, err, scanUser)
}

// ListUsers lists users by id.
func (s *Store) ListUsers(ctx context.Context, p Page) ([]User, error) {
	rows, err := s.Pool.Query(ctx, "SELECT "+userCols+" FROM users ORDER BY id"+limitOffset(p))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanUser)
}

// UpdateUser changes the given fields of a user.
func (s *Store) UpdateUser(ctx context.Context, id int64, username, email *string) (User, error) {
	rows, err := s.Pool.Query(ctx, `UPDATE users SET username = COALESCE($2, username), email = COALESCE($3, email)
		WHERE id = $1 RETURNING `+userCols, id, username, email)
	u, err := one(rows, err, scanUser)
	return u, conflict(err)
}

// DeleteUser deletes a user and, by cascade, their links. It returns the
// short codes of those links, for cache invalidation.
func (s *Store) DeleteUser(ctx context.Context, id int64) ([]string, error) {
	var codes []string
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT short_code FROM urls WHERE user_id = $1", id)
		if err != nil {
			return err
		}
		if codes, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "DELETE FROM users WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return nil
	})
	return codes, err
}

// ImportUsers inserts users keeping their ids; rows whose id, username or
// email already exist are left as they are. The id sequence is advanced past
// the largest id, so later inserts do not collide.
func (s *Store) ImportUsers(ctx context.Context, users []User) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, u := range users {
			batch.Queue("INSERT INTO users (id, username, email, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
				u.ID, u.Username, u.Email, u.CreatedAt)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		return advance(ctx, tx, "users")
	})
}

func advance(ctx context.Context, tx pgx.Tx, table string) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(
		"SELECT setval(pg_get_serial_sequence('%[1]s', 'id'), GREATEST((SELECT COALESCE(MAX(id), 0) FROM %[1]s), 1), (SELECT COUNT(*) > 0 FROM %[1]s))", table))
	return err
}

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

// ListURLs lists links by id.
func (s *Store) ListURLs(ctx context.Context, f URLFilter, p Page) ([]URL, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+urlCols+` FROM urls
		WHERE ($1::bigint IS NULL OR user_id = $1) AND ($2::boolean IS NULL OR is_active = $2)
		ORDER BY id`+limitOffset(p), f.UserID, f.Active)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanURL)
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

// Events

const eventCols = "id, url_id, user_id, event_type, timestamp, details"

func scanEvent(row pgx.CollectableRow) (Event, error) {
	var e Event
	err := row.Scan(&e.ID, &e.URLID, &e.UserID, &e.EventType, &e.Timestamp, &e.Details)
	return e, err
}

// CreateEvent inserts one event.
func (s *Store) CreateEvent(ctx context.Context, e Event) (Event, error) {
	if e.Timestamp.IsZero() {
		e.Timestamp = s.now()
	}
	rows, err := s.Pool.Query(ctx, "INSERT INTO events (url_id, user_id, event_type, timestamp, details) VALUES ($1, $2, $3, $4, $5) RETURNING "+eventCols,
		e.URLID, e.UserID, e.EventType, e.Timestamp, e.Details)
	return one(rows, err, scanEvent)
}

// InsertEvents writes a batch of events with one binary COPY, encoded here
// (see copyEvents).
func (s *Store) InsertEvents(ctx context.Context, evs []Event) error {
	buf := copyEvents(make([]byte, 0, 19+len(evs)*160), evs)
	return s.Pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf),
			"COPY events (url_id, user_id, event_type, timestamp, details) FROM STDIN (FORMAT binary)")
		return err
	})
}

// copyEvents appends events in PostgreSQL's binary COPY format. pgx's
// CopyFrom boxes every value in an interface and looks up its encoder per
// value: a fifth of the redirect path's allocations. The columns are fixed,
// so this writes them directly: int8 as 8 bytes, text as is, timestamp as
// microseconds since 2000-01-01 (the wall clock, as pgx does for a column
// without zone), jsonb as version 1 and the text.
func copyEvents(b []byte, evs []Event) []byte {
	b = append(b, "PGCOPY\n\xff\r\n\x00"...)
	b = binary.BigEndian.AppendUint32(b, 0) // flags
	b = binary.BigEndian.AppendUint32(b, 0) // header extension length
	bigint := func(b []byte, v *int64) []byte {
		if v == nil {
			return binary.BigEndian.AppendUint32(b, 0xffffffff) // -1: NULL
		}
		b = binary.BigEndian.AppendUint32(b, 8)
		return binary.BigEndian.AppendUint64(b, uint64(*v))
	}
	for _, e := range evs {
		b = binary.BigEndian.AppendUint16(b, 5)
		b = bigint(b, e.URLID)
		b = bigint(b, e.UserID)
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.EventType)))
		b = append(b, e.EventType...)
		t := e.Timestamp
		wall := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(wall.Unix()*1_000_000+int64(wall.Nanosecond())/1000-pgEpochMicros))
		if e.Details == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff) // NULL, refused by the column as before
			continue
		}
		b = binary.BigEndian.AppendUint32(b, uint32(1+len(e.Details)))
		b = append(b, 1) // jsonb version
		b = append(b, e.Details...)
	}
	return binary.BigEndian.AppendUint16(b, 0xffff) // -1: end of data
}

// pgEpochMicros is 2000-01-01 in microseconds since the Unix epoch.
const pgEpochMicros = 946_684_800_000_000

// EventFilter narrows ListEvents.
type EventFilter struct {
	URLID     *int64
	UserID    *int64
	EventType *string
}

// ListEvents lists events by id.
func (s *Store) ListEvents(ctx context.Context, f EventFilter, p Page) ([]Event, error) {
	// The index on event_type leaves clicks out (migration 0002); saying so
	// for other types lets a prepared statement's generic plan use it.
	typ := "($3::text IS NULL OR event_type = $3)"
	if f.EventType != nil && *f.EventType != "click" {
		typ = "event_type = $3 AND event_type <> 'click'"
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+eventCols+` FROM events
		WHERE ($1::bigint IS NULL OR url_id = $1) AND ($2::bigint IS NULL OR user_id = $2) AND `+typ+`
		ORDER BY id`+limitOffset(p), f.URLID, f.UserID, f.EventType)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanEvent)
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

// ImportEvents inserts events keeping their ids; existing ids are left alone.
func (s *Store) ImportEvents(ctx context.Context, evs []Event) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		for _, e := range evs {
			batch.Queue(`INSERT INTO events (id, url_id, user_id, event_type, timestamp, details)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, e.ID, e.URLID, e.UserID, e.EventType, e.Timestamp, e.Details)
		}
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return err
		}
		return advance(ctx, tx, "events")
	})
}
