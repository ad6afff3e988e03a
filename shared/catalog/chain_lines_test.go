package catalog_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/catalog/catalogtest"
)

// TestPlanRestorePartitioned: a partitioned backup restores the catalog partition first (here
// partition 2), then the others, then rolls forward on all partitions.
func TestPlanRestorePartitioned(t *testing.T) {
	e := catalogtest.Sample("sales", "20240313010000", events.Full, "")
	e = catalogtest.Partitioned(e, 2, 0, 1) // catalog partition 2
	p, err := catalog.PlanRestore([]catalog.Entry{e}, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Partitions, []int{2, 0, 1}) {
		t.Fatalf("partition order %v", p.Partitions)
	}
	want := []string{
		`db2_all "<<+2< db2 RESTORE DATABASE sales TAKEN AT 20240313010000"`,
		`db2_all "<<-2< db2 RESTORE DATABASE sales TAKEN AT 20240313010000"`,
		"ROLLFORWARD DATABASE sales TO END OF LOGS ON ALL DBPARTITIONNUMS AND STOP",
	}
	if !slices.Equal(p.Commands, want) {
		t.Fatalf("commands\n%q\nwant\n%q", p.Commands, want)
	}
}

// TestPlanTablespaceRestore: listed table spaces come from the newest image that holds them
// all (a table space chain, or a database image), restored online and rolled forward to the end
// of the logs for them alone; a table space image never serves a database restore, and a table
// space no image holds is refused.
func TestPlanTablespaceRestore(t *testing.T) {
	db := catalogtest.Sample("sales", "20240313010000", events.Full, "")
	tf := tablespaceEntry(time.Date(2024, 3, 13, 13, 0, 0, 0, time.UTC), events.Full, "", "TS_ORDERS", "TS_LINES")
	td := tablespaceEntry(time.Date(2024, 3, 14, 13, 0, 0, 0, time.UTC), events.Delta, tf.ImageTimestamp, "TS_ORDERS", "TS_LINES")
	entries := []catalog.Entry{db, tf, td}

	p, err := catalog.PlanTablespaceRestore(entries, []string{"ts_orders"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Target != td.ImageTimestamp || len(p.Images) != 2 || !slices.Equal(p.Tablespaces, []string{"TS_ORDERS"}) {
		t.Fatalf("plan %+v", p)
	}
	want := []string{
		"RESTORE DATABASE sales TABLESPACE (TS_ORDERS) ONLINE INCREMENTAL AUTOMATIC TAKEN AT " + td.ImageTimestamp,
		"ROLLFORWARD DATABASE sales TO END OF LOGS AND STOP TABLESPACE (TS_ORDERS) ONLINE",
	}
	if !slices.Equal(p.Commands, want) {
		t.Fatalf("commands %q", p.Commands)
	}
	// USERSPACE1 is in no table space image: the database image serves.
	p, err = catalog.PlanTablespaceRestore(entries, []string{"USERSPACE1"}, nil)
	if err != nil || p.Target != db.ImageTimestamp || !strings.Contains(strings.Join(p.Notes, ";"), "from database image") {
		t.Fatalf("from the database image: %+v %v", p, err)
	}
	// Only table space images: nothing holds USERSPACE1, and no database restore is planned.
	if _, err := catalog.PlanTablespaceRestore([]catalog.Entry{tf, td}, []string{"USERSPACE1"}, nil); !errors.Is(err, catalog.ErrNoRestorableChain) {
		t.Fatalf("no image holds it: %v", err)
	}
	if _, err := catalog.PlanRestore([]catalog.Entry{tf, td}, time.Time{}, nil); !errors.Is(err, catalog.ErrNoRestorableChain) {
		t.Fatalf("database restore from table space images: %v", err)
	}
}
