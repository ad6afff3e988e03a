package sim

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Every defect the simulator found has a scenario here that reproduced it (and a seed in
// TestSeedsThatFoundDefects).

// play runs o and fails the test on a violation.
func play(t *testing.T, o Options) *Report {
	t.Helper()
	r, err := Run(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range r.Violations {
		t.Error(v)
	}
	return r
}

// crashOnce crashes the first invocation whose name starts with inv at the first step that
// starts with step, and reports whether it did.
func crashOnce(inv, step string) (func(string, string) bool, *bool) {
	done := false
	return func(i, s string) bool {
		if !done && strings.HasPrefix(i, inv) && strings.HasPrefix(s, step) {
			done = true
			return true
		}
		return false
	}, &done
}

// TestRunnerDiesBetweenEntryAndRunRecord: a runner that dies after cataloging its image and before
// writing the run record leaves an image the catalog holds; the scheduler must find it there
// (the catalog is the record) rather than count the run failed at its lease and back the slot
// up again (slot-once).
func TestRunnerDiesBetweenEntryAndRunRecord(t *testing.T) {
	crash, crashed := crashOnce("runner db01-", "before writing catalog/db01/runs/")
	play(t, Options{Seed: 1, Days: 3, Databases: 2, Faults: "none", CrashAt: crash})
	if !*crashed {
		t.Fatal("the runner never crashed where the scenario says")
	}
}

// failAll fails every call that starts with call, made by the first invocation whose name starts
// with inv (and by no other), and reports whether it failed any.
func failAll(inv, call string) (func(string, string) bool, *bool) {
	first, failed := "", false
	return func(i, c string) bool {
		if first == "" && strings.HasPrefix(i, inv) {
			first = i
		}
		if i != first || !strings.HasPrefix(c, call) {
			return false
		}
		failed = true
		return true
	}, &failed
}

// TestRunRecordWriteFailsAfterTheEntry: the runner cataloged its image but could not write the
// run record (twice): it then recorded the run as failed (its discarded record refused, since the
// kept entry exists) and the slot was backed up again (slot-once). The image is the outcome.
func TestRunRecordWriteFailsAfterTheEntry(t *testing.T) {
	fail, failed := failAll("runner db01-", "put catalog/db01/runs/")
	play(t, Options{Seed: 1, Days: 3, Databases: 2, Faults: "none", FailAt: fail})
	if !*failed {
		t.Fatal("no run record write failed")
	}
}

// TestCrashBeforeCancellingAnExpiredRun: the tick that counted a hung run failed at its lease
// crashed before cancelling it; the run went on beside its retry (one-run-per-database).
func TestCrashBeforeCancellingAnExpiredRun(t *testing.T) {
	hangs := Profiles["none"]
	hangs.Name, hangs.Hang, hangs.Requests, hangs.Restores, hangs.Deletes = "every backup hangs", 1, 0, 0, 0
	crash, crashed := crashOnce("scheduler/tick", "before cancelling db01-")
	play(t, Options{Seed: 1, Days: 2, Databases: 1, Profile: &hangs, CrashAt: crash})
	if !*crashed {
		t.Fatal("no tick crashed before cancelling an expired run")
	}
}

// TestKeyProtectDownAtTheFirstTick: Key Protect did not answer the first tick, so no key version
// was known yet, and the backups it started recorded none (chains-restorable).
func TestKeyProtectDownAtTheFirstTick(t *testing.T) {
	fail, failed := failAll("scheduler/tick", "kp ")
	play(t, Options{Seed: 1, Days: 2, Databases: 2, Faults: "none", FailAt: fail})
	if !*failed {
		t.Fatal("no Key Protect call failed")
	}
}

// TestSlowRewrapAfterTheWindow: when Db2 re-wraps for longer than the maximum window, the first
// backup after the window fails with a rotation failure; keyguard then retried on its ordinary
// backoff (30 minutes, an hour, two) into the same re-wrap, where the event contract says a
// rotation failure reopens the hold. Two backups of a database that fail during one re-wrap must
// be a maximum window apart.
func TestSlowRewrapAfterTheWindow(t *testing.T) {
	slow := Profiles["none"]
	slow.Name, slow.SlowRewrap, slow.PolicyMonths, slow.Manual, slow.Requests, slow.Restores, slow.Deletes = "every re-wrap outlasts the window", 1, 1, 0, 0, 0, 0
	s := simulate(t, Options{Seed: 3, Days: 40, Databases: 4, Profile: &slow})
	failed := 0
	for _, name := range s.names {
		d := s.or.dbs[name]
		var last *job
		for _, j := range d.jobs {
			if !j.att.Rewrap {
				continue
			}
			failed++
			if last != nil && d.tr.Key.latest(last.at) == d.tr.Key.latest(j.at) && j.at.Sub(last.at) < d.pol.MaxWindow() {
				t.Errorf("%s: %s failed during the re-wrap %s after %s did", name, j.run.RunID, j.at.Sub(last.at), last.run.RunID)
			}
			last = j
		}
	}
	if failed == 0 {
		t.Fatal("no backup met a re-wrap: the scenario tests nothing")
	}
}

// simulate plays o and returns the simulation, for a scenario to look inside; it fails the test
// on a violation.
func simulate(t *testing.T, o Options) *Sim {
	t.Helper()
	o.defaults()
	p, err := ProfileNamed(o.Faults)
	if o.Profile != nil {
		p, err = *o.Profile, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrace(o.Seed, o.Start, o.Days, o.Databases, p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSim(o, p, tr)
	if err != nil {
		t.Fatal(err)
	}
	s.schedule()
	s.runUntil(tr.End, 0)
	for _, v := range s.violations {
		t.Error(v)
	}
	return s
}

// TestSeedsThatFoundDefects replays the seeds on which the simulation found a defect, beside the
// scenarios above. The runs of a whole default year (a minute or two each) are played only when
// KEYGUARD_SIM_LONG is set.
func TestSeedsThatFoundDefects(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("TestHostile covers the race detector's share")
	}
	long := []Options{
		{Seed: 11, Days: 365, Databases: 50, Faults: "hostile"}, // an entry write whose answer was lost, then a failing discarded record
		{Seed: 4, Days: 365, Databases: 50, Faults: "hostile"},  // the same, and storing the entry again failing too
		{Seed: 5, Days: 365, Databases: 50, Faults: "hostile"},  // an unconfirmed start whose image was cataloged, given up in a window
		{Seed: 2, Days: 365, Databases: 50, Faults: "hostile"},  // retention deleted an image a restore had just leased
		{Seed: 13, Days: 365, Databases: 50, Faults: "hostile"}, // a restore planned on an entry whose deletion had crashed half way, which retention then finished
		{Seed: 8, Days: 365, Databases: 50, Faults: "hostile"},  // an unconfirmed start closed in a hold whose cancel was lost: its late success ignored, the slot backed up twice
	}
	if os.Getenv("KEYGUARD_SIM_LONG") == "" {
		long = nil
	}
	for _, o := range append([]Options{
		{Seed: 1, Days: 60, Databases: 20, Faults: "typical"},  // a runner died between its entry and its run record
		{Seed: 2, Days: 60, Databases: 20, Faults: "hostile"},  // a run record write failed after the entry; an entry write lost its answer
		{Seed: 3, Days: 60, Databases: 20, Faults: "hostile"},  // Key Protect down at the first tick
		{Seed: 4, Days: 60, Databases: 20, Faults: "hostile"},  // a crash before cancelling an expired run
		{Seed: 11, Days: 60, Databases: 20, Faults: "hostile"}, // an unconfirmed start asked for again inside a rotation window
		{Seed: 23, Days: 60, Databases: 20, Faults: "hostile"}, // the same
	}, long...) {
		t.Run(fmt.Sprintf("%s-seed%d-%ddays", o.Faults, o.Seed, o.Days), func(t *testing.T) {
			t.Parallel()
			play(t, o)
		})
	}
}

// TestRetentionRacesARestoresLease: retention read the restore leases before a restore's lease
// showed in listings (written just before, or lagging), and deleted an image the restore had
// planned (retention-safe; hostile seed 2 of a whole year). A restore relies on its images only
// once its lease shows and a retention pass that missed it is over, and checks they are still
// cataloged; retention reads the leases again before each deletion.
func TestRetentionRacesARestoresLease(t *testing.T) {
	laggy := Profiles["none"]
	laggy.Name, laggy.ListLag, laggy.Restores, laggy.Requests, laggy.Deletes = "listings lag ninety seconds, restores all day", 90*time.Second, 5000, 0, 0
	r := play(t, Options{Seed: 1, Days: 30, Databases: 4, Profile: &laggy})
	if r.Platform.Restores == 0 {
		t.Fatal("no restore ran")
	}
}
