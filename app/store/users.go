// Package store is the shortener's PostgreSQL access: users, links and their
// events, through one pgx pool that is opened and warmed before traffic.
package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

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

// ListUsers calls fn with each user of the page, by id, as it is read.
func (s *Store) ListUsers(ctx context.Context, p Page, fn func(User) error) error {
	return list(ctx, s, scanUser, fn, "SELECT "+userCols+" FROM users ORDER BY id"+limitOffset(p))
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
