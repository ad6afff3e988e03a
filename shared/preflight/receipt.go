package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// Prefix is where the preflight keeps its objects in the bucket (under the deployment's
// prefix): receipts and probes under preflight/<run id>/, the last tick and the host agents'
// polls beside them. The Terraform expires it after a day.
const Prefix = "preflight/"

// Receipt is what a function records when a preflight probe reaches it.
type Receipt struct {
	RunID    string `json:"run_id"`
	Function string `json:"function"`
	// Path is the HTTP route the probe came in on ("/events"), or "job" for a job run.
	Path       string    `json:"path"`
	EventID    string    `json:"event_id"`
	Source     string    `json:"source"`
	ReceivedAt time.Time `json:"received_at"`
}

// ReceiptKey is where fn records its receipt of run's probe.
func ReceiptKey(runID, fn string) string { return Prefix + runID + "/" + fn + ".json" }

// RunPrefix holds every object of one preflight run.
func RunPrefix(runID string) string { return Prefix + runID + "/" }

// Putter writes one object (objstore.Store satisfies it).
type Putter interface {
	Put(ctx context.Context, key string, body []byte, c objstore.Cond) (string, error)
}

// RecordReceipt records that fn received the preflight probe p (event e) on path, create-only,
// and reports whether this call created the receipt: a second delivery of the same probe (Event
// Notifications may deliver twice) finds it there and succeeds with false. It is what every
// function does with a probe, and all it does.
func RecordReceipt(ctx context.Context, objs Putter, fn, path string, e events.Event, p events.Preflight, now time.Time) (bool, error) {
	if err := p.Validate(); err != nil {
		return false, err
	}
	body, err := json.Marshal(Receipt{RunID: p.RunID, Function: fn, Path: path, EventID: e.ID, Source: e.Source, ReceivedAt: now.UTC()})
	if err != nil {
		return false, err
	}
	_, err = objs.Put(ctx, ReceiptKey(p.RunID, fn), body, objstore.Cond{IfNoneMatch: true})
	switch {
	case errors.Is(err, objstore.ErrPrecondition):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("record preflight receipt %s/%s: %w", p.RunID, fn, err)
	}
	return true, nil
}

// TickKey is where the scheduler records the last tick that reached it.
const TickKey = Prefix + "tick.json"

// Tick is the record of the last tick.
type Tick struct {
	At time.Time `json:"at"`
	// Type is the notification type the tick came as (the periodic timer's is not documented).
	Type string `json:"type"`
	// Source is the notification's source.
	Source string `json:"source,omitempty"`
}

// RecordTick records the tick e received at now (unconditionally: the newest wins).
func RecordTick(ctx context.Context, objs Putter, e events.Event, now time.Time) error {
	body, err := json.Marshal(Tick{At: now.UTC(), Type: e.Type, Source: e.Source})
	if err != nil {
		return err
	}
	if _, err := objs.Put(ctx, TickKey, body, objstore.Cond{}); err != nil {
		return fmt.Errorf("record tick: %w", err)
	}
	return nil
}

// AgentPrefix holds one record per host agent.
const AgentPrefix = Prefix + "agents/"

// AgentPoll is a host agent's record of its last poll.
type AgentPoll struct {
	Agent string `json:"agent"`
	// Databases are the databases it serves; empty means every db2cli database with runner: host.
	Databases []string      `json:"databases,omitempty"`
	Interval  time.Duration `json:"interval_ns"`
	At        time.Time     `json:"at"`
	// Error is the last poll's error, if it had one.
	Error string `json:"error,omitempty"`
}

// AgentName turns a host name into an agent name (the characters an object key part allows).
func AgentName(host string) string {
	var b strings.Builder
	for _, c := range host {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), ".")
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" {
		s = "agent"
	}
	return s
}

// AgentKey is where agent records its polls.
func AgentKey(agent string) string { return AgentPrefix + agent + ".json" }

// RecordAgentPoll records a host agent's poll (unconditionally: the newest wins).
func RecordAgentPoll(ctx context.Context, objs Putter, a AgentPoll) error {
	if !events.ValidRunID(a.Agent) {
		return fmt.Errorf("record agent poll: agent name %q must be 1-64 of A-Z, a-z, 0-9, '.', '_' and '-'", a.Agent)
	}
	a.At = a.At.UTC()
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := objs.Put(ctx, AgentKey(a.Agent), body, objstore.Cond{}); err != nil {
		return fmt.Errorf("record agent poll: %w", err)
	}
	return nil
}
