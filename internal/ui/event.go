package ui

// SchemaVersion is the version of the NDJSON event schema (docs/events.md).
// Adding optional fields keeps the version; renaming or removing one bumps it.
const SchemaVersion = 1

// Event types. docs/events.md and docs/events.schema.json describe each one.
const (
	TypePhaseStart = "phase_start"
	TypePhaseEnd   = "phase_end"
	TypeResource   = "resource"
	TypeDiagnostic = "diagnostic"
	TypeProgress   = "progress"
	TypeHeartbeat  = "heartbeat"
	TypeLog        = "log"
	TypeAppLog     = "app_log"
	TypeSummary    = "summary"
	TypeResult     = "result"
	TypeError      = "error"
)

// Event is one line of --json output. Fields not used by a type are omitted.
type Event struct {
	V    int    `json:"v"`
	Time string `json:"time"`
	Type string `json:"type"`

	Phase   string `json:"phase,omitempty"`
	Message string `json:"message,omitempty"`
	Status  string `json:"status,omitempty"`

	// resource
	Op           string `json:"op,omitempty"`
	URN          string `json:"urn,omitempty"`
	ResourceType string `json:"resource_type,omitempty"`
	Name         string `json:"name,omitempty"`

	DurationMS int64 `json:"duration_ms,omitempty"`

	// diagnostic and log
	Severity string `json:"severity,omitempty"`

	// progress and heartbeat
	Done    int64  `json:"done,omitempty"`
	Total   int64  `json:"total,omitempty"`
	Unit    string `json:"unit,omitempty"`
	Waiting string `json:"waiting,omitempty"`

	// summary and result: the human outputs, and the command's typed result
	Outputs map[string]any `json:"outputs,omitempty"`
	Data    any            `json:"data,omitempty"`

	// error
	Class    string `json:"class,omitempty"`
	ExitCode int    `json:"exit_code,omitempty"`
	Fix      string `json:"fix,omitempty"`
}

// Fields is a decoded event's data as an object (nil when it has none):
// what a consumer that decodes events into Event reads fields from.
func (e Event) Fields() map[string]any {
	m, _ := e.Data.(map[string]any)
	return m
}
