package check

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/logchain"
	"github.com/keyguard-dev/keyguard/shared/state"
)

const fleet = `version: 1
databases:
  - name: sales
    instance: db2inst1@h
    executor: db2cli
    backup_dir: /b
    key_crn: crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001
    schedules: {full: "0 2 * * *"}
    drill: {cron: "0 5 * * 6", target: SCR}
`

func entry(db config.Database, day int) catalog.Entry {
	end := time.Date(2026, 11, 20+day, 2, 30, 0, 0, time.UTC)
	ts := catalog.Timestamp(end.Add(-30 * time.Minute))
	return catalog.Entry{Database: db.Name, ImageTimestamp: ts, Type: events.Full, Mode: events.Online, Scope: catalog.ScopeDatabase,
		StartedAt: end.Add(-30 * time.Minute), EndedAt: end, Images: []catalog.Object{{Key: catalog.ImageKey(db.Name, ts, "SALES.0.x"), Size: 10, SHA256: strings.Repeat("a", 64)}},
		SizeBytes: 10, KeyCRN: db.KeyCRN, KeyVersion: "v1", RunID: "r", Executor: "db2cli", Verification: catalog.Verification{Verified: true, Tool: "db2ckbkp", At: end}}
}

func TestEvaluate(t *testing.T) {
	f, err := config.Load([]byte(fleet))
	if err != nil {
		t.Fatal(err)
	}
	db := f.Databases[0]
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	healthy := func() Observation {
		e1, e2 := entry(db, 2), entry(db, 3)
		st := state.New(db.Name, db.KeyCRN)
		st.LastSuccess = &state.Outcome{At: e2.EndedAt, Type: events.Full}
		st.LastDrill = &state.DrillOutcome{ID: "d", At: now.Add(-48 * time.Hour), Success: true, Seconds: 12}
		logs := logchain.Verify([]logchain.File{{Number: 3, Modified: now.Add(-20 * time.Minute)}, {Number: 4, Modified: now.Add(-10 * time.Minute)}},
			logchain.Need{From: 3, FirstActive: 5, Chain: -1})
		logs.Database, logs.CheckedAt, logs.Archive, logs.Deleter = db.Name, now.Add(-5*time.Minute), "/archive", "keyguard"
		return Observation{DB: db, State: st, Now: now, Listing: &catalog.Listing{Entries: []catalog.Entry{e1, e2}},
			Objects: map[string]Object{e2.Images[0].Key: {Size: 10}}, Keys: map[[2]string]string{{db.KeyCRN, "v1"}: ""},
			Beats: true, Heartbeat: now.Add(-5 * time.Minute), Logs: &logs}
	}
	cases := []struct {
		name   string
		change func(*Observation)
		level  Level
		check  string
		says   string
	}{
		{"healthy", func(*Observation) {}, OK, NewestPoint, "every image in COS at its size"},
		{"archived logs healthy", func(*Observation) {}, OK, ArchivedLogs, "newest archived log S0000004.LOG written 10m0s ago; 2 files, no gap"},
		{"archived log missing in the range", func(o *Observation) {
			logs := logchain.Verify([]logchain.File{{Number: 3}, {Number: 5, Modified: now.Add(-10 * time.Minute)}}, logchain.Need{From: 3, FirstActive: 6, Chain: -1})
			logs.Database, logs.CheckedAt = db.Name, now
			o.Logs = &logs
		}, Critical, ArchivedLogs, "gap in the restorable range (from S0000003.LOG): S0000004.LOG missing; newest archived log S0000005.LOG written 10m0s ago"},
		{"archiving stalled", func(o *Observation) { o.Logs.NewestAt = now.Add(-40 * time.Hour) }, Warning, ArchivedLogs, "is archiving stalled"},
		{"archive of the policy not listed", func(o *Observation) { o.Logs.Error = "permission denied"; o.DB.LogArchive.Dir = "/mnt/a" }, Warning, ArchivedLogs, "permission denied"},
		{"archive on the Db2 host only", func(o *Observation) { o.Logs.Error = "log archive directory not found" }, OK, ArchivedLogs, "set log_archive to check them"},
		{"image removed from the bucket", func(o *Observation) { o.Objects = map[string]Object{} }, Critical, NewestPoint, "missing from COS"},
		{"image of another size", func(o *Observation) {
			for k := range o.Objects {
				o.Objects[k] = Object{Size: 3}
			}
		}, Critical, NewestPoint, "3 bytes in COS, the catalog says 10"},
		{"key version gone", func(o *Observation) { o.Keys[[2]string{db.KeyCRN, "v1"}] = "the key is destroyed" }, Critical, NewestPoint, "the key is destroyed"},
		{"old backup", func(o *Observation) { o.Now = now.Add(30 * time.Hour); o.Heartbeat = o.Now }, Warning, BackupAge, "more than max_age 30h0m0s"},
		{"very old backup", func(o *Observation) { o.Now = now.Add(80 * time.Hour); o.Heartbeat = o.Now }, Critical, BackupAge, "more than twice"},
		{"one chain", func(o *Observation) { o.Listing.Entries = o.Listing.Entries[1:] }, Warning, Chains, "fewer than 2"},
		{"drill failed", func(o *Observation) { o.State.LastDrill.Success, o.State.LastDrill.Code = false, "SQL4970N" }, Critical, Drill, "SQL4970N"},
		{"no drill yet", func(o *Observation) { o.State.LastDrill = nil }, Warning, Drill, "no drill recorded"},
		{"window stuck", func(o *Observation) {
			o.State.Window = &state.RotationWindow{ToVersion: "v2", OpenedAt: now.Add(-6 * time.Hour), MaxCloseAt: now.Add(-2 * time.Hour)}
		}, Critical, Window, "past its maximum"},
		{"failures", func(o *Observation) { o.State.ConsecutiveFailures = 5 }, Critical, Failures, "retries exhausted"},
		{"ticks stopped", func(o *Observation) { o.Heartbeat = now.Add(-31 * time.Minute) }, Critical, Ticks, "the scheduler has stopped"},
		{"never ticked", func(o *Observation) { o.Heartbeat = time.Time{} }, Critical, Ticks, "no tick recorded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := healthy()
			c.change(&o)
			r := Evaluate(o)
			var it *Item
			for i := range r.Items {
				if r.Items[i].Name == c.check {
					it = &r.Items[i]
				}
			}
			if r.Level != c.level || it == nil || it.Level != c.level || !strings.Contains(it.Message, c.says) {
				t.Fatalf("level %s, %s = %+v, want %s saying %q\n%+v", r.Level, c.check, it, c.level, c.says, r.Items)
			}
		})
	}
}

func TestFormats(t *testing.T) {
	now := time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)
	rs := []Result{
		{Database: "a", Level: OK, NewestPoint: now.Add(-time.Hour), Items: []Item{{BackupAge, OK, "fine"}}},
		{Database: "b", Level: Critical, Items: []Item{{BackupAge, OK, "fine"}, {NewestPoint, Critical, "image gone"}}},
	}
	var b bytes.Buffer
	if err := Nagios(&b, rs, now); err != nil {
		t.Fatal(err)
	}
	want := "KEYGUARD CRITICAL - 2 database(s): 1 critical, 0 warning, 0 unknown, 1 ok | 'a_level'=0;1;2 'a_restorable_age'=3600s 'b_level'=2;1;2\n" +
		"b CRITICAL: newest restorable point: image gone\n"
	if b.String() != want {
		t.Errorf("nagios:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := JSON(&b, rs); err != nil || !strings.Contains(b.String(), `"level": "CRITICAL"`) {
		t.Errorf("json %v:\n%s", err, b.String())
	}
	b.Reset()
	if err := Table(&b, rs); err != nil || !strings.Contains(b.String(), "newest restorable point  CRITICAL  image gone") {
		t.Errorf("table %v:\n%s", err, b.String())
	}
}
