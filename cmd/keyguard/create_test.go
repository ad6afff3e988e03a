package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/policy"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/test/testkit"
)

// deliver hands what the command sends to the real request handler of the scheduler, as Event
// Notifications would.
type deliver struct {
	req  scheduler.Requests
	runs []events.BackupStarted
}

func (d *deliver) Send(ctx context.Context, id string, p events.Payload) error {
	e, err := events.Encode(id, "keyguard/cli", testNow, p)
	if err != nil {
		return err
	}
	if _, err := d.req.Handle(ctx, e); err != nil && !errors.Is(err, edge.ErrRejected) {
		return err // a refusal (422) is the scheduler's answer to Event Notifications, not to the sender
	}
	return nil
}

func (d *deliver) Start(_ context.Context, r events.BackupStarted) error {
	d.runs = append(d.runs, r)
	return nil
}

// TestBackupCreateWait: -wait follows the request through the real scheduler's request handler
// to each outcome: completed (the run record), failed (the run record, or the state when the
// lease expired), refused (the last decision) and no answer (the timeout).
func TestBackupCreateWait(t *testing.T) {
	cases := []struct {
		name string
		db   string
		// then runs at each poll after the first, with the run the scheduler started.
		then    func(t *testing.T, f fixture, run events.BackupStarted, poll int)
		err     string // "" = success
		refused bool
		out     []string
	}{
		{name: "completed", db: "db3", then: func(t *testing.T, f fixture, run events.BackupStarted, poll int) {
			if poll == 2 {
				complete(t, f, run)
			}
		}, out: []string{"started run db3-full-20261120T000000Z-a1-req: full online backup at 2026-11-20 00:00:00Z",
			"completed: online full backup 20261120000000 of db3, 14.0 MiB, key version 7a0c6f2e, verified"}},
		{name: "failed", db: "db3", then: func(t *testing.T, f fixture, run events.BackupStarted, poll int) {
			fail := events.BackupFailed{Database: run.Database, RunID: run.RunID, Type: run.Type, StartedAt: run.StartedAt, EndedAt: testNow,
				Class: events.Permanent, Code: "SQL2036N", Message: "the path for the file or device is not valid"}
			if err := catalog.New(f.objs).PutRun(context.Background(), catalog.RunRecord{Database: run.Database, RunID: run.RunID, Failed: &fail}); err != nil {
				t.Fatal(err)
			}
		}, err: "failed (permanent): SQL2036N the path for the file or device is not valid"},
		{name: "lease expired", db: "db3", then: func(t *testing.T, f fixture, run events.BackupStarted, poll int) {
			_, err := state.Update(context.Background(), state.NewObjectStore(f.objs), "db3", nil, func(st *state.State) error {
				policy.ApplyFailure(st, mustDB(t, f, "db3"), *st.Run, events.Transient, "lease expired with no outcome", testNow)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}, err: "lease expired with no outcome; the scheduler retries (full, attempt 2)"},
		{name: "refused", db: "db1", refused: true, err: "the scheduler did not start the backup of db1: run in flight (db1-delta-20261119T130000Z-a2)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := seed(t)
			d := &deliver{}
			d.req = scheduler.Requests{Scheduler: &scheduler.Scheduler{Store: state.NewObjectStore(f.objs), Fleet: f.o.fleet,
				Execs: map[string]scheduler.Executor{config.ExecDb2CLI: d}, Send: &testkit.Sender{}, Catalog: catalog.New(f.objs),
				Clock: clock.NewFake(testNow), Log: slog.New(slog.DiscardHandler)}}
			f.o.sender = d
			polls := 1
			f.o.sleep = func(context.Context, time.Duration) error {
				polls++
				if polls > 5 {
					return errors.New("still waiting after 5 polls")
				}
				if tc.then != nil && len(d.runs) == 1 {
					tc.then(t, f, d.runs[0], polls)
				}
				return nil
			}
			err := f.run(t, "backup", "create", tc.db, "-wait", "-reason", "before the upgrade")
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("create -wait = %v\n%s", err, f.out)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("create -wait = %v, want an error saying %q\n%s", err, tc.err, f.out)
			case tc.refused != errors.Is(err, errRefused):
				t.Errorf("create -wait = %v; refused %v", err, tc.refused)
			}
			for _, want := range tc.out {
				if !strings.Contains(f.out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, f.out)
				}
			}
			if tc.refused {
				return
			}
			st, _, err := state.NewObjectStore(f.objs).Get(context.Background(), tc.db)
			if err != nil {
				t.Fatal(err)
			}
			var by, why string
			switch {
			case st.Run != nil:
				by, why = st.Run.RequestedBy, st.Run.Reason
			case st.LastFailure != nil:
				by, why = st.LastFailure.RequestedBy, st.LastFailure.Reason
			}
			if by != "keyguard-cli:alice (request 1a2b3c4d)" || why != "before the upgrade" {
				t.Errorf("the state records the request by %q for %q", by, why)
			}
		})
	}

	t.Run("no answer", func(t *testing.T) {
		f := seed(t)
		now := testNow
		f.o.now = func() time.Time { return now }
		f.o.sleep = func(_ context.Context, d time.Duration) error { now = now.Add(d); return nil }
		err := f.run(t, "backup", "create", "db3", "-wait", "-timeout", "10s")
		if err == nil || !strings.Contains(err.Error(), "gave up waiting after 10s: the scheduler has not answered the request") {
			t.Errorf("create -wait with no answer = %v", err)
		}
	})
}

func mustDB(t *testing.T, f fixture, name string) config.Database {
	t.Helper()
	fl, err := f.o.fleet.Fleet(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db, ok := fl.Database(name)
	if !ok {
		t.Fatalf("no %s in the fleet", name)
	}
	return db
}

// complete records run's success as a runner would: the entry, then the run record.
func complete(t *testing.T, f fixture, run events.BackupStarted) {
	t.Helper()
	e := catalogtest.Sample(run.Database, run.StartedAt.Format(catalog.TimestampLayout), run.Type, "")
	e.RunID = run.RunID
	c := events.BackupCompleted{Database: e.Database, RunID: run.RunID, Type: e.Type, Mode: e.Mode, StartedAt: e.StartedAt, EndedAt: e.EndedAt,
		ImageTimestamp: e.ImageTimestamp, SizeBytes: e.SizeBytes, KeyCRN: e.KeyCRN, KeyVersion: e.KeyVersion, Verified: true}
	if err := catalog.New(f.objs).Record(context.Background(), &e, catalog.RunRecord{Database: e.Database, RunID: run.RunID, Completed: &c}); err != nil {
		t.Fatal(err)
	}
}
