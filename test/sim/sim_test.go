package sim

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// short is the CI run of the hostile profile: 20 databases, 60 days, 3 seeds.
func short() (days, dbs int, seeds []uint64) { return 60, 20, []uint64{1, 2, 3} }

// TestHostile plays the hostile profile over a few seeds: every invariant must hold. Under the
// race detector, which slows a run ten times, it plays two weeks of one seed; the whole CI run
// is then played by TestBrokenBuildsAreCaught on the unbroken build, without it.
func TestHostile(t *testing.T) {
	days, dbs, seeds := short()
	if raceEnabled {
		days, seeds = 14, seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel()
			r := play(t, Options{Seed: seed, Days: days, Databases: dbs, Faults: "hostile"})
			t.Logf("seed %d: %d steps, %d crashes, %d notifications lost, %.1fs", seed, r.Steps, r.Platform.Crashes, r.Platform.NotificationsLost, r.WallSecs)
		})
	}
}

// TestReproducible: a seed replays the same run, step for step.
func TestReproducible(t *testing.T) {
	o := Options{Seed: 42, Days: 10, Databases: 8, Faults: "hostile", KeepGoing: true}
	var digests [2]string
	for i := range digests {
		r, err := Run(o)
		if err != nil {
			t.Fatal(err)
		}
		digests[i] = r.Digest
	}
	if digests[0] != digests[1] {
		t.Fatalf("seed 42 played twice: digests %s and %s", digests[0], digests[1])
	}
	o.Seed = 43
	if r, err := Run(o); err != nil || r.Digest == digests[0] {
		t.Fatalf("seed 43 played like seed 42 (%v)", err)
	}
}

// mutant is a deliberately broken keyguard: a replacement in one file, and the invariant that
// must catch it.
type mutant struct {
	name, file, old, new, want string
}

var mutants = []mutant{
	{"conditional writes off", "shared/state/objectstore.go",
		`cond := objstore.Cond{IfMatch: etag, IfNoneMatch: etag == ""}`, `cond := objstore.Cond{}`, InvLostUpdate},
	{"rotation hold removed", "shared/policy/hold.go",
		"case st.Window != nil:", "case st.Window != nil && false:", InvRotationHold},
	{"no full after a window", "shared/policy/tick.go",
		`st.NeedFull, st.NeedFullReason = true, "first backup under key version "+version`, `_ = version`, InvFullAfterWindow},
	{"run in flight not held", "shared/policy/hold.go",
		"case st.Run != nil:", "case st.Run != nil && false:", InvOneRun},
	{"leases expire never", "shared/policy/tick.go",
		"if now.After(run.LeaseUntil) {", "if false && now.After(run.LeaseUntil) {", InvOutcomeLost},
	{"a failure leaves its run in flight", "shared/policy/outcome.go",
		"\t\tst.Run = nil\n\t}\n\tmsg = state.Truncate", "\t}\n\tmsg = state.Truncate", InvOutcomeOnce},
	{"a success leaves its run in flight", "shared/policy/outcome.go",
		"\t\tst.Run = nil\n\t}\n\tst.ConsecutiveFailures = 0", "\t}\n\tst.ConsecutiveFailures = 0", InvOutcomeLost},
	{"retention ignores restore leases", "shared/catalog/lease.go",
		"return InUse(ctx, c.store, db, now)", "return map[string]bool{}, nil", InvRetention},
	{"retention forgets chains", "shared/catalog/retain.go",
		"for j := i; j >= 0 && !chained[j]; j = parent[j] {", "for j := i; j >= 0 && !chained[j] && j == i; j = parent[j] {", InvRetention},
	{"alerts never flushed", "shared/outbox/outbox.go",
		"if s == nil || len(s.PendingAlerts) == 0 {", "if true {", InvAlertDelivered},
	{"slots not marked taken", "shared/policy/tick.go",
		"if slot.After(st.Slots[t]) {", "if false && slot.After(st.Slots[t]) {", InvOutcomeOnce},
	{"an expired run's cataloged image ignored", "shared/scheduler/scheduler.go",
		"if now := clock.Or(s.Clock).Now(); now.After(run.LeaseUntil) || !run.Started && !now.Before(run.StartedAt.Add(policy.StartGrace)) {",
		"if false {", InvSlotOnce},
	{"entries lose their key version", "shared/catalog/entry.go",
		"func normalize(e Entry) Entry {\n", "func normalize(e Entry) Entry {\n\te.KeyVersion = \"\"\n", InvChains},
	{"failures neither retried nor alerted", "shared/policy/policy.go",
		"return &state.Retry{At: now.Add(Backoff(db.Retry, failures)), Type: run.Type, Slot: run.Slot, Attempt: run.Attempt + 1}, alert",
		"return nil, false", InvRetriedOrAlerted},
	{"a budget the states do not fit", "shared/state/state.go",
		"const BudgetBytes = 32 << 10", "const BudgetBytes = 1 << 10", InvBudget},
	{"a failure of no run in flight applied", "shared/policy/outcome.go",
		"if st.Run == nil || st.Run.ID != p.RunID {\n\t\treturn \"failure of \"", "if st.Run != nil && st.Run.ID != p.RunID {\n\t\treturn \"failure of \"", InvNoPanic},
	{"full slots never due", "shared/policy/policy.go",
		"if slot, ok := DueSlot(sched, s.Slots[t], now, db.CatchUp); ok {", "if slot, ok := DueSlot(sched, s.Slots[t], now, db.CatchUp); ok && t != events.Full {", InvRPO},
}

// TestBrokenBuildsAreCaught builds keyguard broken on purpose, one way at a time (a Go overlay
// replaces one file), and plays the CI's hostile run on it: the named invariant must report it.
// The unbroken build plays it too, and must report nothing.
func TestBrokenBuildsAreCaught(t *testing.T) {
	if testing.Short() {
		t.Skip("builds keyguard once per mutant")
	}
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	work := t.TempDir()
	var mu sync.Mutex
	busy := make(chan struct{}, 2) // two builds at a time
	t.Run("unbroken", func(t *testing.T) {
		t.Parallel()
		busy <- struct{}{}
		defer func() { <-busy }()
		cmd := exec.Command("go", "test", "-count=1", "-run", "^TestMutantProbe$", "-v", "./test/sim")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "KEYGUARD_SIM_PROBE=1")
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), " violated (") || !strings.Contains(string(out), "all invariants held") {
			t.Errorf("the unbroken build's hostile run (%v):\n%s", err, tail(string(out), 30))
		}
	})
	for i, m := range mutants {
		t.Run(strings.ReplaceAll(m.name, " ", "_"), func(t *testing.T) {
			t.Parallel()
			busy <- struct{}{}
			defer func() { <-busy }()
			src, err := os.ReadFile(filepath.Join(root, m.file))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Count(string(src), m.old) != 1 {
				t.Fatalf("%s: %q occurs %d times, want once (update the mutant)", m.file, m.old, strings.Count(string(src), m.old))
			}
			dir := filepath.Join(work, fmt.Sprint(i))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			broken := filepath.Join(dir, filepath.Base(m.file))
			if err := os.WriteFile(broken, []byte(strings.Replace(string(src), m.old, m.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			overlay, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, m.file): broken}})
			ov := filepath.Join(dir, "overlay.json")
			if err := os.WriteFile(ov, overlay, 0o644); err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			cmd := exec.Command("go", "test", "-overlay", ov, "-count=1", "-run", "^TestMutantProbe$", "-v", "./test/sim")
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "KEYGUARD_SIM_PROBE=1")
			out, _ := cmd.CombinedOutput()
			mu.Lock()
			defer mu.Unlock()
			found := "none"
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "invariant ") && strings.Contains(line, " violated") && found == "none" {
					found = strings.TrimSpace(line)
				}
				if strings.Contains(line, "invariant "+m.want+" violated") {
					t.Logf("%s: caught by %s in %s: %s", m.name, m.want, time.Since(began).Round(time.Second), strings.TrimSpace(line))
					return
				}
			}
			t.Errorf("%s: no %s violation (first: %s)\n%s", m.name, m.want, found, tail(string(out), 30))
		})
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestMutantProbe is the run TestBrokenBuildsAreCaught makes on a broken build: the CI's hostile
// run, printing each seed's first violation.
func TestMutantProbe(t *testing.T) {
	if os.Getenv("KEYGUARD_SIM_PROBE") == "" {
		t.Skip("run by TestBrokenBuildsAreCaught")
	}
	days, dbs, seeds := short()
	for _, seed := range seeds {
		r, err := Run(Options{Seed: seed, Days: days, Databases: dbs, Faults: "hostile"})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range r.Violations {
			t.Log(v)
		}
		if len(r.Violations) > 0 {
			return
		}
		t.Logf("seed %d: all invariants held (%d steps, %.1fs)", seed, r.Steps, r.WallSecs)
	}
}
