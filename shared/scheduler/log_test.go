package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestIdleDecisionsAreDebug: a tick that starts a backup logs its decision at INFO; the ticks
// after it, idle while the run is in flight, log theirs at DEBUG, although the first of them
// changes the state (the last decision goes from start to idle).
func TestIdleDecisionsAreDebug(t *testing.T) {
	r := newRig(t, day.Add(4*time.Hour+5*time.Minute))
	var buf bytes.Buffer
	r.s.Log = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	for range 3 {
		if _, err := r.s.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		r.clk.Advance(5 * time.Minute)
	}
	levels := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m["msg"] != "decision" || m["database"] != "db1" {
			continue
		}
		levels[m["action"].(string)] = append(levels[m["action"].(string)], m["level"].(string))
	}
	if got := strings.Join(levels["start"], ","); got != "INFO" {
		t.Errorf("start decisions logged at %q, want one INFO", got)
	}
	if got := strings.Join(levels["idle"], ","); got != "DEBUG,DEBUG" {
		t.Errorf("idle decisions logged at %q, want DEBUG twice", got)
	}
}
