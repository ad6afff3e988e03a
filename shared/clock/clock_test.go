package clock

import (
	"testing"
	"time"
)

func TestFakeFiresTimersInOrder(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewFake(start)
	var got []time.Duration
	c.AfterFunc(2*time.Hour, func() { got = append(got, c.Now().Sub(start)) })
	c.AfterFunc(time.Hour, func() { got = append(got, c.Now().Sub(start)) })
	stopped := c.AfterFunc(90*time.Minute, func() { t.Error("stopped timer fired") })
	if !stopped.Stop() {
		t.Fatal("Stop on a pending timer returned false")
	}
	c.Advance(30 * time.Minute)
	if len(got) != 0 {
		t.Fatalf("fired early: %v", got)
	}
	c.Advance(3 * time.Hour)
	if len(got) != 2 || got[0] != time.Hour || got[1] != 2*time.Hour {
		t.Fatalf("fired %v, want [1h 2h]", got)
	}
	if c.Now().Sub(start) != 210*time.Minute {
		t.Fatalf("now = %v", c.Now())
	}
}

func TestOrDefaultsToReal(t *testing.T) {
	if _, ok := Or(nil).(Real); !ok {
		t.Fatal("Or(nil) is not Real")
	}
}
