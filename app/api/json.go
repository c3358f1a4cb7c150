package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TimeFormat is the contract's timestamp form: UTC, no zone, seconds.
const TimeFormat = "2006-01-02T15:04:05"

func ts(t time.Time) string { return t.UTC().Format(TimeFormat) }

// apiError is an error response: a message and, for validation, the fields at fault.
type apiError struct {
	Status int               `json:"-"`
	Msg    string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

func (e *apiError) Error() string { return e.Msg }

func errStatus(status int, format string, args ...any) *apiError {
	return &apiError{Status: status, Msg: fmt.Sprintf(format, args...)}
}

func invalid(fields map[string]string) *apiError {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	return &apiError{Status: http.StatusUnprocessableEntity, Msg: "invalid " + strings.Join(sortStrings(names), ", "), Fields: fields}
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err *apiError) {
	writeJSON(w, err.Status, err)
}

const maxBody = 1 << 20

// object reads a request body that must be a JSON object.
type object map[string]json.RawMessage

func decodeObject(r *http.Request) (object, *apiError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, errStatus(http.StatusBadRequest, "could not read the request body")
	}
	if len(body) > maxBody {
		return nil, errStatus(http.StatusRequestEntityTooLarge, "request body over %d bytes", maxBody)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errStatus(http.StatusBadRequest, "the request body must be a JSON object")
	}
	var obj object
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&obj); err != nil {
		return nil, errStatus(http.StatusBadRequest, "malformed JSON: %s", jsonProblem(err))
	}
	if dec.More() {
		return nil, errStatus(http.StatusBadRequest, "malformed JSON: data after the object")
	}
	return obj, nil
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at offset %d", se.Error(), se.Offset)
	}
	return err.Error()
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// fields collects per-field problems while reading an object.
type fields map[string]string

func (o object) str(f fields, name string, required bool, check func(string) string) *string {
	raw, ok := o[name]
	if !ok || isNull(raw) {
		if required {
			f[name] = "is required"
		}
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		f[name] = "must be a string"
		return nil
	}
	if check != nil {
		if p := check(s); p != "" {
			f[name] = p
			return nil
		}
	}
	return &s
}

func (o object) id(f fields, name string, required bool) *int64 {
	raw, ok := o[name]
	if !ok || isNull(raw) {
		if required {
			f[name] = "is required"
		}
		return nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	n, isNum := v.(json.Number)
	if err := dec.Decode(&v); err == nil {
		n, isNum = v.(json.Number) // a quoted "1" is a string, not an id
	}
	if !isNum {
		f[name] = "must be a positive integer"
		return nil
	}
	id, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil || id <= 0 {
		f[name] = "must be a positive integer"
		return nil
	}
	return &id
}

func (o object) boolean(f fields, name string) *bool {
	raw, ok := o[name]
	if !ok {
		return nil
	}
	var b bool
	if isNull(raw) || json.Unmarshal(raw, &b) != nil {
		f[name] = "must be true or false"
		return nil
	}
	return &b
}

// pathID reads a positive integer path parameter.
func pathID(r *http.Request, name string) (int64, *apiError) {
	v, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || v <= 0 {
		return 0, &apiError{Status: http.StatusBadRequest, Msg: "invalid " + name, Fields: map[string]string{name: "must be a positive integer"}}
	}
	return v, nil
}

// queryID reads an optional positive integer query parameter.
func queryID(r *http.Request, f fields, name string) *int64 {
	s := r.URL.Query().Get(name)
	if s == "" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		f[name] = "must be a positive integer"
		return nil
	}
	return &v
}
