package testkit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
)

// Sent is one recorded send.
type Sent struct {
	ID      string
	Payload events.Payload
}

// Sender records what is sent. FailNext makes the next n sends fail.
type Sender struct {
	mu       sync.Mutex
	sent     []Sent
	failNext int
}

// ErrSend is returned by a failing send.
var ErrSend = errors.New("send failed (injected)")

// Send records p, or fails if told to.
func (s *Sender) Send(_ context.Context, id string, p events.Payload) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext > 0 {
		s.failNext--
		return ErrSend
	}
	if err := p.Validate(); err != nil {
		return err
	}
	s.sent = append(s.sent, Sent{ID: id, Payload: p})
	return nil
}

// FailNext makes the next n sends fail.
func (s *Sender) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// OfType returns the recorded sends of one event type.
func (s *Sender) OfType(typ string) []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Sent
	for _, x := range s.sent {
		if x.Payload.EventType() == typ {
			out = append(out, x)
		}
	}
	return out
}

// KeyA and KeyB are valid key CRNs.
const (
	KeyA = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001"
	KeyB = "crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b002"
)

// Fleet is two databases on KeyA (db1 small, db2 large) and one on KeyB, daily fulls at 02:00 and
// hourly deltas on db1.
const Fleet = `version: 1
defaults:
  executor: db2cli
databases:
  - name: db1
    instance: i1
    key_crn: ` + KeyA + `
    size: 100GiB
    lease: 2h
    schedules: {full: "0 2 * * *", delta: "30 * * * *"}
  - name: db2
    instance: i2
    key_crn: ` + KeyA + `
    size: 2TiB
    schedules: {full: "0 3 * * *"}
  - name: db3
    instance: i3
    key_crn: ` + KeyB + `
    schedules: {full: "0 4 * * *"}
`

// LoadFleet parses Fleet.
func LoadFleet(t testing.TB) *config.Fleet {
	t.Helper()
	f, err := config.Load([]byte(Fleet))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Event builds an inbound event of a keyguard type.
func Event(t testing.TB, id string, p events.Payload) events.Event {
	t.Helper()
	e, err := events.Encode(id, "test", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
