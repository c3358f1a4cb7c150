package rollout

import (
	"strings"
	"testing"
)

func TestParsePlan(t *testing.T) {
	out := `{"level":"INFO","msg":"pool open"}
-- liftoff:plan
-- liftoff:migration 0003_tags.sql
ALTER TABLE urls ADD COLUMN tags text[];
-- liftoff:migration 0004_index.sql
CREATE INDEX urls_tags ON urls USING gin (tags);
-- liftoff:end
{"level":"INFO","msg":"done"}
`
	got, err := ParsePlan(out)
	if err != nil || len(got) != 2 || got[0].Name != "0003_tags.sql" || !strings.Contains(got[1].SQL, "CREATE INDEX") {
		t.Fatalf("%v %+v", err, got)
	}
	if none, err := ParsePlan("-- liftoff:plan\n-- liftoff:end\n"); err != nil || len(none) != 0 {
		t.Errorf("nothing pending: %v %+v", err, none)
	}
	if _, err := ParsePlan(`{"msg":"no plan here"}`); err == nil {
		t.Error("output without a plan block accepted")
	}
}

// TestBreaking: what the slot still on the old code does not survive is
// named; what it survives passes.
func TestBreaking(t *testing.T) {
	for sql, want := range map[string]string{
		"ALTER TABLE urls DROP COLUMN title;":                              "drops a column",
		"alter table urls drop title":                                      "drops a column",
		"DROP TABLE events;":                                               "drops a table",
		"ALTER TABLE urls RENAME COLUMN title TO name;":                    "renames",
		"ALTER TABLE urls RENAME TO links;":                                "renames",
		"ALTER TABLE urls ALTER COLUMN title TYPE varchar(50);":            "changes a column's type",
		"ALTER TABLE urls ALTER title SET DATA TYPE text;":                 "changes a column's type",
		"ALTER TABLE urls ALTER COLUMN title SET NOT NULL;":                "NOT NULL",
		"ALTER TABLE urls ADD COLUMN owner bigint NOT NULL;":               "adds a NOT NULL column",
		"TRUNCATE events;":                                                 "truncates",
		"ALTER TABLE urls ADD COLUMN tags text[];":                         "",
		"ALTER TABLE urls ADD COLUMN hits bigint NOT NULL DEFAULT 0;":      "",
		"CREATE INDEX urls_tags ON urls (tags);":                           "",
		"DROP INDEX events_type;":                                          "",
		"ALTER TABLE urls DROP CONSTRAINT urls_title_check;":               "",
		"ALTER TABLE urls ALTER COLUMN title DROP NOT NULL;":               "",
		"-- we used to DROP TABLE here\nCREATE TABLE tags (id bigserial);": "",
	} {
		got := Breaking(sql)
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("%q: %q, want %q", sql, got, want)
		}
	}
}
