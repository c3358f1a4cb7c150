package backup

import (
	"context"
	"fmt"
	"io"
)

// Restore replaces the database's contents with the dump of size bytes read from r, in
// one transaction: the objects the dump holds are dropped and recreated
// and their rows loaded, and nothing changes when any step fails. Until it
// commits, the app's queries on those tables wait rather than fail (or
// see half a restore). Objects the dump does not hold stay as they are.
func (t *Tools) Restore(ctx context.Context, r io.Reader, size int64) error {
	if err := t.upload(ctx, r, size); err != nil {
		return err
	}
	err := t.Shell(ctx, `exec pg_restore --exit-on-error --single-transaction --clean --if-exists --no-owner --no-acl -d "$DATABASE_URL" `+uploadPath, nil, io.Discard)
	if err != nil {
		return fmt.Errorf("pg_restore into the app's database: %w", err)
	}
	return nil
}
