package launch

import (
	"testing"
	"time"

	"github.com/liftoff-dev/liftoff/internal/engine"
)

// Only previews are collected: an expiry tag on a stack that is no preview
// (no parent tag) never makes it expired.
func TestExpiredOnlyPreviews(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339)
	list := []engine.StackSummary{
		{Name: "pr-1", Tags: map[string]string{TagPreviewOf: "prod", TagExpires: past}},
		{Name: "pr-2", Tags: map[string]string{TagPreviewOf: "prod", TagExpires: future}},
		{Name: "was-a-preview", Tags: map[string]string{TagExpires: past}},
		{Name: "prod", Tags: map[string]string{}},
	}
	got := Expired(list, now)
	if len(got) != 1 || got[0].Name != "pr-1" {
		t.Errorf("expired: %v", got)
	}
}
