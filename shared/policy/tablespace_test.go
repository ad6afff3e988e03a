package policy

import (
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// TestTablespaceSchedule: a table space slot runs beside the database's schedules, never
// covered by a database backup due at the same time (it runs at the next tick), never covering
// one; its run is a full table space backup (backup.started type full, scope tablespace), and
// when the chain needs a full the slot is taken as a database full.
func TestTablespaceSchedule(t *testing.T) {
	f, err := config.Load([]byte(`version: 1
databases:
  - name: db1
    instance: db2inst1@h
    key_crn: crn:v1:bluemix:public:kms:us-south:a/0123456789abcdef0123456789abcdef:5f1e2d3c-0000-4000-8000-00000000aaaa:key:0b1c2d3e-0000-4000-8000-00000000b001
    executor: db2cli
    schedules: {full: "0 2 * * 0", incremental: "0 2 * * 1-6", tablespace: "0 2 * * *"}
    tablespaces: [TS_ORDERS]
`))
	if err != nil {
		t.Fatal(err)
	}
	db := f.Databases[0]
	s := withSuccess(state.New("db1", db.KeyCRN))
	s.Slots[events.Tablespace] = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

	d := Decide(s, db, mon0205)
	if d.Action != Start || d.Type != events.Incremental {
		t.Fatalf("both due: %+v", d)
	}
	if _, covered := d.Covers[events.Tablespace]; covered {
		t.Fatalf("the incremental covers the table space slot: %+v", d.Covers)
	}
	s.Slots[events.Incremental] = mon0200
	d = Decide(s, db, mon0205)
	if d.Action != Start || d.Type != events.Tablespace || !d.Slot.Equal(mon0200) {
		t.Fatalf("table space slot: %+v", d)
	}
	if _, covered := d.Covers[events.Incremental]; covered {
		t.Fatalf("the table space run covers a database slot: %+v", d.Covers)
	}
	run := NewRun(s, db, d.Type, d.Mode, d.Slot, 1, mon0205)
	ev := run.Event("db1")
	if ev.Type != events.Full || ev.Scope != events.ScopeTablespace || ev.Validate() != nil {
		t.Fatalf("event %+v: %v", ev, ev.Validate())
	}
	// A table space success does not clear a database's need for a full.
	s.NeedFull, s.NeedFullReason = true, "new key version"
	if d := Decide(s, db, mon0205); d.Type != events.Full {
		t.Fatalf("need full: %+v", d)
	}
	s.Run = &run
	ApplySuccess(s, run, "20261123020500", s.Key.Version, mon0205)
	if !s.NeedFull {
		t.Fatal("a table space backup cleared NeedFull")
	}
}
