// Package store is the shortener's PostgreSQL access: users, links and their
// events, through one pgx pool that is opened and warmed before traffic.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound means the row does not exist.
var ErrNotFound = errors.New("not found")

// ConflictError means a unique field already holds the value.
type ConflictError struct {
	// Field is the API field at fault ("" when the constraint is not one
	// the API names: Constraint then says which, for the logs).
	Field, Constraint string
}

func (e *ConflictError) Error() string {
	if e.Field == "" {
		return "unique constraint " + e.Constraint + " violated"
	}
	return e.Field + " already exists"
}

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
	// StatementTimeout is every session's statement_timeout (0: none).
	StatementTimeout time.Duration
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
	if o.StatementTimeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(o.StatementTimeout.Milliseconds(), 10)
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
		return &ConflictError{Constraint: pg.ConstraintName} // logged, never shown
	}
	if errors.As(err, &pg) && pg.Code == "23503" {
		return ErrNotFound
	}
	return err
}

// list runs a listing's query and calls fn with each row as it arrives.
// The rows stream to the client while the statement runs, so the query
// lasts as long as the client takes to read: in a read-only transaction
// its statement timeout is the request's remaining time (at least a
// second), not StatementTimeout, which would cut a large page short.
func list[T any](ctx context.Context, s *Store, scan pgx.RowToFunc[T], fn func(T) error, sql string, args ...any) error {
	return pgx.BeginTxFunc(ctx, s.Pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if d, ok := ctx.Deadline(); ok {
			if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", max(time.Until(d).Milliseconds(), 1000))); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, sql, args...)
		return each(rows, err, scan, fn)
	})
}

// each calls fn with every row of a query as it arrives: one row in
// memory at a time, however large the page (a listing streams through it).
func each[T any](rows pgx.Rows, err error, scan pgx.RowToFunc[T], fn func(T) error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return err
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return rows.Err()
}

// one collects the one row of a query; none is ErrNotFound.
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
