package logchain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrInvalid: a stored report does not decode or breaks a rule.
var ErrInvalid = errors.New("invalid log chain report")

// Encode returns r's stored form (indented JSON, ending in a newline).
func Encode(r Report) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	r.CheckedAt = r.CheckedAt.UTC()
	r.NewestAt = r.NewestAt.UTC()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode log chain report: %w", err)
	}
	return append(b, '\n'), nil
}

// Decode parses a stored report strictly: unknown fields, trailing data, more than
// MaxReportSize bytes or a report that breaks a rule are errors wrapping ErrInvalid.
func Decode(body []byte) (Report, error) {
	if len(body) > MaxReportSize {
		return Report{}, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(body), MaxReportSize)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var r Report
	if err := dec.Decode(&r); err != nil {
		return Report{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Report{}, fmt.Errorf("%w: data after the report", ErrInvalid)
	}
	if err := r.validate(); err != nil {
		return Report{}, err
	}
	return r, nil
}

func (r Report) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	num := func(n int) bool { return n >= -1 && n <= MaxLogNumber }
	switch {
	case r.Database == "" || len(r.Database) > 128:
		return bad("database is required")
	case r.CheckedAt.IsZero():
		return bad("checked_at is required")
	case !num(r.From) || !num(r.FirstActive) || !num(r.Oldest) || !num(r.Newest):
		return bad("log numbers must be -1 to %d", MaxLogNumber)
	case r.Chain < 0 || r.Chain > MaxLogNumber || r.Partition < 0 || r.Partition > 999:
		return bad("chain or partition out of range")
	case r.Files < 0 || r.Missing < 0 || r.GapsOmitted < 0 || r.OlderChainFiles < 0 || r.Deleted < 0:
		return bad("counts must not be negative")
	case len(r.Gaps) > MaxGaps:
		return bad("more than %d gaps", MaxGaps)
	case r.Deleter != "" && r.Deleter != "db2" && r.Deleter != "keyguard":
		return bad("deleter must be db2 or keyguard")
	}
	for i, g := range r.Gaps {
		if !num(g.First) || !num(g.Last) || g.First < 0 || g.Last < g.First || (g.Kind != Missing && g.Kind != NotArchivedYet) {
			return bad("gaps[%d] is not a range of log numbers of a known kind", i)
		}
	}
	return nil
}
