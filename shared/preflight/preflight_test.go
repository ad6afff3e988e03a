package preflight_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/preflight"
)

const (
	account  = "0123456789abcdef0123456789abcdef"
	kmsInst  = "5f1e2d3c-0000-4000-8000-00000000aaaa"
	keyCRN   = "crn:v1:bluemix:public:kms:us-south:a/" + account + ":" + kmsInst + ":key:0b1c2d3e-0000-4000-8000-00000000b001"
	db2CRN   = "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/" + account + ":7a1b2c3d-0000-4000-8000-000000000002::"
	cosCRN   = "crn:v1:bluemix:public:cloud-object-storage:global:a/" + account + ":c0500000-0000-4000-8000-000000000001::"
	sourceID = "src-keyguard:api"
)

const fleetYAML = `version: 1
databases:
  - name: ledger
    instance: "` + db2CRN + `"
    executor: db2saas
    key_crn: ` + keyCRN + `
    size: 2TiB
    schedules: {full: "30 3 * * *"}
  - name: archive
    instance: db2inst1@db2-archive.internal
    executor: db2cli
    key_crn: ` + keyCRN + `
    size: 80GiB
    mode: offline
    backup_dir: /db2backup/archive
    schedules: {full: "@daily"}
`

var errRefused = errkind.With(errkind.Configuration, errors.New("403 Forbidden"))

// world is a deployment made of fakes that pass every check; tests break one piece each.
type world struct {
	objs      *objstore.Memory
	now       time.Time
	refuseDel bool
	refusePut bool

	mu       sync.Mutex
	deliver  map[string]bool // function -> the probe reaches it
	jobExist bool
	regs     []preflight.Registration
	auths    []preflight.Authorization
	topo     preflight.ENTopology
	version  string
	keyState events.KeyState
	vstatus  string
	putVers  error
}

func newWorld(t *testing.T) *world {
	w := &world{objs: objstore.NewMemory(), now: time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC),
		deliver:  map[string]bool{config.FnScheduler: true, config.FnRotation: true, config.FnCompletion: true, config.FnRestore: true, config.FnRunner: true},
		jobExist: true, regs: []preflight.Registration{{ResourceCRN: db2CRN, KeyVersion: "v1"}}, keyState: events.KeyActive,
		vstatus: "Enabled", putVers: errRefused}
	w.auths = []preflight.Authorization{
		{ID: "p1", Source: "cloud-object-storage", SourceInstance: "c0500000-0000-4000-8000-000000000001", Target: "kms", TargetInstance: kmsInst, Roles: []string{"Reader"}},
		{ID: "p2", Source: "dashdb-for-transactions", Target: "kms", Roles: []string{"crn:v1:bluemix:public:iam::::serviceRole:Reader"}},
		{ID: "p3", Source: "event-notifications", SourceInstance: "en-1", Target: "codeengine", TargetInstance: "proj-1", Roles: []string{"Viewer", "Writer"}},
	}
	w.topo = topology()
	ctx := context.Background()
	tick, _ := json.Marshal(preflight.Tick{At: w.now.Add(-2 * time.Minute), Type: "com.ibm.cloud.event-notifications.periodic-timer:triggered"})
	if _, err := w.objs.Put(ctx, preflight.TickKey, tick, objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	return w
}

// topology is the routing the Terraform module creates.
func topology() preflight.ENTopology {
	t := preflight.ENTopology{Sources: []preflight.ENSource{{ID: sourceID, Name: "keyguard-events", Type: "api", Enabled: true}, {ID: "timer", Name: "periodic timer", Type: "periodic-timer", Enabled: true}}}
	for _, r := range config.Routes {
		topic := preflight.ENTopic{ID: "t-" + r.Function + r.Path, Name: "keyguard-" + r.Function + "-topic"}
		if r.Periodic {
			topic.Rules = []preflight.ENRule{{SourceID: "timer", Enabled: true, Schedule: "*/5 * * * *"}}
		}
		for _, typ := range r.Types {
			topic.Rules = append(topic.Rules, preflight.ENRule{SourceID: sourceID, Enabled: true, EventTypeFilter: "$.type == '" + typ + "'"})
		}
		d := preflight.ENDestination{ID: "d-" + r.Function + r.Path, Name: "keyguard-" + r.Function, Type: "ibmce", CEType: "application", URL: "https://keyguard-" + r.Function + ".abc.us-south.codeengine.appdomain.cloud" + r.Path}
		if r.Kind == "job" {
			d.CEType, d.URL, d.JobName = "job", "", "keyguard-"+r.Function
		}
		t.Destinations = append(t.Destinations, d)
		topic.Subscriptions = []preflight.ENSubscription{{ID: "s-" + d.ID, DestinationID: d.ID, DestinationType: "ibmce"}}
		t.Topics = append(t.Topics, topic)
	}
	t.Destinations = append(t.Destinations, preflight.ENDestination{ID: "email", Name: "email", Type: "smtp_ibm"})
	t.Topics = append(t.Topics, preflight.ENTopic{ID: "alerts-critical", Name: "keyguard-alerts-critical",
		Rules:         []preflight.ENRule{{SourceID: sourceID, Enabled: true, EventTypeFilter: "$.type == 'dev.keyguard.alert'", NotificationFilter: "$.data.severity == 'critical'"}},
		Subscriptions: []preflight.ENSubscription{{ID: "s-mail", DestinationID: "email", DestinationType: "smtp_ibm", Subscribed: []string{"ops@example.com"}}}})
	return t
}

func (w *world) deployment(t *testing.T) preflight.Deployment {
	f, err := config.Load([]byte(fleetYAML))
	if err != nil {
		t.Fatal(err)
	}
	return preflight.Deployment{
		Fleet: config.Static{F: f}, Credentials: creds{}, Objects: objects{w}, BucketName: "keyguard-data", Bucket: bucket{},
		BucketConfig: bucketConfig{w}, CanDelete: true, COSInstanceCRN: cosCRN, Keys: keys{w}, Authorizations: auths{w},
		Publisher: publisher{w}, Topology: topo{w}, SourceID: sourceID, ENInstanceID: "en-1", Jobs: jobs{w}, CEProjectID: "proj-1",
		RunnerJob: "keyguard-runner", Db2: db2{}, Clock: fixedClock{w.now},
	}
}

func run(t *testing.T, d preflight.Deployment) preflight.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return preflight.Run(ctx, d, preflight.Options{RunID: "pf-test", AppWait: 300 * time.Millisecond, JobWait: 300 * time.Millisecond, Poll: 10 * time.Millisecond})
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }
func (c fixedClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return time.AfterFunc(d, f)
}

type creds struct{}

func (creds) Token(context.Context) (preflight.Identity, error) {
	return preflight.Identity{Subject: "iam-ServiceId-test", Account: account}, nil
}

type objects struct{ w *world }

func (o objects) Get(ctx context.Context, k string) ([]byte, string, error) {
	return o.w.objs.Get(ctx, k)
}
func (o objects) List(ctx context.Context, p string) ([]objstore.Info, error) {
	return o.w.objs.List(ctx, p)
}
func (o objects) Put(ctx context.Context, k string, b []byte, c objstore.Cond) (string, error) {
	if o.w.refusePut && strings.HasPrefix(k, preflight.Prefix) {
		return "", fmt.Errorf("objstore: put %s: %w", k, errRefused)
	}
	return o.w.objs.Put(ctx, k, b, c)
}
func (o objects) Delete(ctx context.Context, k string) error {
	if o.w.refuseDel {
		return fmt.Errorf("objstore: delete %s: %w", k, errRefused)
	}
	return o.w.objs.Delete(ctx, k)
}

type bucket struct{}

func (bucket) Head(context.Context) (preflight.BucketHead, error) {
	return preflight.BucketHead{Name: "keyguard-data", KeyProtect: true, RootKeyCRN: keyCRN}, nil
}

type bucketConfig struct{ w *world }

func (b bucketConfig) Versioning(context.Context) (string, error) { return b.w.vstatus, nil }
func (b bucketConfig) ObjectLock(context.Context) (bool, error)   { return false, nil }
func (b bucketConfig) PutVersioning(context.Context, string) error {
	return b.w.putVers
}
func (b bucketConfig) Refused(err error) bool { return errors.Is(err, errRefused) }

type keys struct{ w *world }

func (k keys) Key(context.Context, string) (preflight.Key, error) {
	return preflight.Key{State: k.w.keyState, Version: "v1"}, nil
}
func (k keys) Versions(context.Context, string) ([]string, error) { return []string{"v1"}, nil }
func (k keys) Registrations(context.Context, string) ([]preflight.Registration, error) {
	k.w.mu.Lock()
	defer k.w.mu.Unlock()
	return k.w.regs, nil
}

type auths struct{ w *world }

func (a auths) Authorizations(_ context.Context, acct string) ([]preflight.Authorization, error) {
	if acct != account {
		return nil, fmt.Errorf("wrong account %q", acct)
	}
	return a.w.auths, nil
}

type topo struct{ w *world }

func (t topo) Topology(context.Context) (preflight.ENTopology, error) { return t.w.topo, nil }

// publisher delivers the probe to every function the world lets it reach, which records its
// receipt as the runtime's wrapper does.
type publisher struct{ w *world }

func (p publisher) Send(ctx context.Context, id string, pl events.Payload) error {
	probe := pl.(events.Preflight)
	e, err := events.Encode(id, "keyguard/test", p.w.now, probe)
	if err != nil {
		return err
	}
	for _, r := range config.Routes {
		if !p.w.deliver[r.Function] || r.Periodic {
			continue
		}
		path := r.Path
		if r.Kind == "job" {
			path = "job"
		}
		if _, err := preflight.RecordReceipt(ctx, p.w.objs, r.Function, path, e, probe, p.w.now); err != nil {
			return err
		}
	}
	return nil
}

type jobs struct{ w *world }

func (j jobs) Job(context.Context) (preflight.Job, error) {
	if !j.w.jobExist {
		return preflight.Job{}, fmt.Errorf("get job keyguard-runner: %w", preflight.ErrNotFound)
	}
	return preflight.Job{Name: "keyguard-runner", Project: "proj-1"}, nil
}
func (j jobs) RunEvent(ctx context.Context, name string, pl events.Payload) error {
	probe := pl.(events.Preflight)
	e, _ := events.Encode("preflight/"+probe.RunID, "keyguard/test", j.w.now, probe)
	if j.w.deliver[config.FnRunner] {
		_, err := preflight.RecordReceipt(ctx, j.w.objs, config.FnRunner, "job", e, probe, j.w.now)
		return err
	}
	return nil
}

type db2 struct{}

func (db2) Backups(_ context.Context, crn string) (int, error) {
	if crn != db2CRN {
		return 0, fmt.Errorf("unknown instance %s", crn)
	}
	return 3, nil
}

func find(r preflight.Report, check string) (preflight.Result, bool) {
	for _, x := range r.Results {
		if strings.HasPrefix(x.Check, check) {
			return x, true
		}
	}
	return preflight.Result{}, false
}

func TestEverythingWiredPasses(t *testing.T) {
	w := newWorld(t)
	r := run(t, w.deployment(t))
	var buf bytes.Buffer
	_ = r.WriteTable(&buf)
	t.Log("\n" + buf.String())
	if !r.OK() {
		t.Fatalf("a well-wired deployment failed:\n%s", buf.String())
	}
	for _, want := range []string{"credentials", "bucket keyguard-data", "object round trip", "least privilege", "key 0b1c2d3e",
		"cos c0500000 -> kms 5f1e2d3c", "db2 ledger -> kms 5f1e2d3c", "event-notifications -> codeengine", "route scheduler /events", "route rotation /events",
		"route completion /events", "route restore job", "route scheduler /tick", "alerts", "runner job keyguard-runner", "db2 on cloud ledger"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, buf.String())
		}
	}
	if x, _ := find(r, "host agents"); x.Status != preflight.Skip {
		t.Errorf("host agents with no host database: %+v", x)
	}
	if r.Identity != "iam-ServiceId-test" {
		t.Errorf("identity %q", r.Identity)
	}
	if !strings.Contains(buf.String(), "all checks passed") {
		t.Errorf("summary:\n%s", buf.String())
	}
	var back preflight.Report
	buf.Reset()
	if err := r.WriteJSON(&buf); err != nil || json.Unmarshal(buf.Bytes(), &back) != nil || len(back.Results) != len(r.Results) {
		t.Fatalf("JSON: %v\n%s", err, buf.String())
	}
}

// Each break makes one named check fail with a reason that says what is wrong.
func TestEachBreakFailsItsCheck(t *testing.T) {
	tests := []struct {
		name  string
		brk   func(w *world, d *preflight.Deployment)
		check string
		want  string
	}{
		{"denied COS write", func(w *world, _ *preflight.Deployment) { w.refusePut = true }, "object round trip", "refused"},
		{"delete refused to an identity meant to delete", func(w *world, _ *preflight.Deployment) { w.refuseDel = true }, "object round trip", "delete was refused"},
		{"delete allowed to a function without retention", func(_ *world, d *preflight.Deployment) { d.CanDelete = false }, "object round trip", "may delete objects"},
		{"identity can change versioning", func(w *world, d *preflight.Deployment) { w.putVers, d.Operator = nil, false }, "least privilege", "can change the bucket's versioning"},
		{"versioning suspended", func(w *world, _ *preflight.Deployment) { w.vstatus = "Suspended" }, "versioning", "not Enabled"},
		{"missing key registration", func(w *world, _ *preflight.Deployment) { w.regs = nil }, "key 0b1c2d3e", "not registered to the key: ledger"},
		{"key disabled", func(w *world, _ *preflight.Deployment) { w.keyState = events.KeySuspended }, "key 0b1c2d3e", "key is suspended"},
		{"no Db2 authorization", func(w *world, _ *preflight.Deployment) { w.auths = w.auths[:1] }, "db2 ledger", "no authorization grants Reader"},
		{"route delivers nowhere", func(w *world, _ *preflight.Deployment) {
			w.deliver[config.FnRotation] = false
			w.topo.Topics[2].Subscriptions = nil
		}, "route rotation /events", "none has a subscription"},
		{"restore job route delivers nowhere", func(w *world, _ *preflight.Deployment) { w.deliver[config.FnRestore] = false }, "route restore job", "no receipt from restore"},
		{"missing alert subscription", func(w *world, _ *preflight.Deployment) { w.topo.Topics[len(w.topo.Topics)-1].Subscriptions = nil }, "alerts", "no critical alert reaches a person"},
		{"alert email not accepted", func(w *world, _ *preflight.Deployment) {
			s := &w.topo.Topics[len(w.topo.Topics)-1].Subscriptions[0]
			s.Subscribed, s.Invited = nil, []string{"ops@example.com"}
		}, "alerts", "invited, not yet accepted: ops@example.com"},
		{"runner job absent", func(w *world, _ *preflight.Deployment) { w.jobExist = false }, "runner job", "does not exist in project proj-1"},
		{"runner never records", func(w *world, _ *preflight.Deployment) { w.deliver[config.FnRunner] = false }, "runner job", "recorded no receipt"},
		{"Db2 on Cloud not configured", func(_ *world, d *preflight.Deployment) { d.Db2 = nil }, "executors", "KEYGUARD_DB2SAAS_URL"},
		{"no tick", func(w *world, _ *preflight.Deployment) { _ = w.objs.Delete(context.Background(), preflight.TickKey) }, "route scheduler /tick", "no tick has reached"},
		{"source disabled", func(w *world, _ *preflight.Deployment) { w.topo.Sources[0].Enabled = false }, "source", "disabled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			d := w.deployment(t)
			tc.brk(w, &d)
			r := run(t, d)
			x, found := find(r, tc.check)
			if !found {
				t.Fatalf("no check %q in %+v", tc.check, r.Results)
			}
			if x.Status != preflight.Fail || !strings.Contains(x.Detail, tc.want) || x.Fix == "" {
				t.Fatalf("%s: want FAIL with %q and a fix, got %s: %s (fix: %s)", tc.check, tc.want, x.Status, x.Detail, x.Fix)
			}
			if r.OK() {
				t.Fatal("the report says OK")
			}
			if n := len(r.Failed()); n > 2 {
				t.Errorf("one break failed %d checks: %+v", n, r.Failed())
			}
		})
	}
}

// A function's own identity has no topology, IAM or bucket configuration reader: those checks
// are skipped, the others run.
func TestFunctionScopeSkipsWhatItCannotRead(t *testing.T) {
	w := newWorld(t)
	d := w.deployment(t)
	d.Topology, d.Authorizations, d.CanDelete, d.Operator = nil, nil, false, false
	d.BucketConfig = refusingConfig{}
	w.refuseDel = true
	r := run(t, d)
	if !r.OK() {
		var buf bytes.Buffer
		_ = r.WriteTable(&buf)
		t.Fatalf("function scope failed:\n%s", buf.String())
	}
	for _, c := range []string{"source", "alerts", "authorizations", "versioning"} {
		if x, _ := find(r, c); x.Status != preflight.Skip {
			t.Errorf("%s: %s %s", c, x.Status, x.Detail)
		}
	}
	if x, _ := find(r, "least privilege"); x.Status != preflight.OK || !strings.Contains(x.Detail, "may not even read") {
		t.Errorf("least privilege of a function: %s %s", x.Status, x.Detail)
	}
	if x, _ := find(r, "object round trip"); !strings.Contains(x.Detail, "delete refused, as this identity's role intends") {
		t.Errorf("round trip: %s", x.Detail)
	}
}

// refusingConfig is a bucket's configuration as a function's custom role sees it.
type refusingConfig struct{}

func (refusingConfig) Versioning(context.Context) (string, error)  { return "", errRefused }
func (refusingConfig) ObjectLock(context.Context) (bool, error)    { return false, errRefused }
func (refusingConfig) PutVersioning(context.Context, string) error { return errRefused }
func (refusingConfig) Refused(err error) bool                      { return errors.Is(err, errRefused) }

// An operator's identity that may change the bucket's versioning is told so, not failed.
func TestOperatorMayChangeVersioning(t *testing.T) {
	w := newWorld(t)
	d := w.deployment(t)
	d.Operator, w.putVers = true, nil
	if x, _ := find(run(t, d), "least privilege"); x.Status != preflight.Skip || !strings.Contains(x.Detail, "right for an operator") {
		t.Fatalf("operator: %s %s", x.Status, x.Detail)
	}
}

type hanging struct{ preflight.Db2 }

func (hanging) Backups(ctx context.Context, _ string) (int, error) {
	<-ctx.Done()
	time.Sleep(200 * time.Millisecond) // answers late, after the budget
	return 0, ctx.Err()
}

func TestBudgetBoundsTheRun(t *testing.T) {
	w := newWorld(t)
	d := w.deployment(t)
	d.Db2 = hanging{}
	start := time.Now()
	r := preflight.Run(context.Background(), d, preflight.Options{RunID: "pf-budget", Budget: 500 * time.Millisecond, AppWait: 100 * time.Millisecond, JobWait: 100 * time.Millisecond, Poll: 10 * time.Millisecond})
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s with a budget of 500ms", took)
	}
	x, _ := find(r, "db2 on cloud ledger")
	if x.Status != preflight.Fail || !strings.Contains(x.Detail, "within the budget") {
		t.Fatalf("hanging check: %+v", x)
	}
}

func TestRecordReceiptIsCreateOnlyAndIdempotent(t *testing.T) {
	ctx := context.Background()
	objs := objstore.NewMemory()
	p := events.Preflight{RunID: "pf-1", RequestedBy: "test"}
	e := events.Event{ID: "preflight/pf-1", Source: "keyguard/ops"}
	at := time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	for i := range 2 {
		created, err := preflight.RecordReceipt(ctx, objs, "rotation", "/events", e, p, at.Add(time.Duration(i)*time.Second))
		if err != nil || created != (i == 0) {
			t.Fatalf("delivery %d: created %v, %v", i+1, created, err)
		}
	}
	b, _, err := objs.Get(ctx, preflight.ReceiptKey("pf-1", "rotation"))
	if err != nil {
		t.Fatal(err)
	}
	var rc preflight.Receipt
	if err := json.Unmarshal(b, &rc); err != nil || rc.Function != "rotation" || rc.Path != "/events" || !rc.ReceivedAt.Equal(at) {
		t.Fatalf("receipt %s: %v (the second delivery must not overwrite the first)", b, err)
	}
	if _, err := preflight.RecordReceipt(ctx, objs, "rotation", "/events", e, events.Preflight{RunID: "../x", RequestedBy: "t"}, at); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("a run id that escapes the prefix: %v", err)
	}
}

func TestJobRunName(t *testing.T) {
	for in, want := range map[string]string{
		"pf-20261124T020000Z-3f9a01": "preflight-pf-20261124t020000z-3f9a01",
		"A.B_C":                      "preflight-a-b-c",
		strings.Repeat("x", 80):      "preflight-" + strings.Repeat("x", 53),
	} {
		if got := preflight.JobRunName(in); got != want || len(got) > 63 {
			t.Errorf("JobRunName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHostAgents(t *testing.T) {
	w := newWorld(t)
	d := w.deployment(t)
	f, err := config.Load([]byte(fleetYAML + `  - name: billing
    instance: db2inst1@db2-billing.internal
    executor: db2cli
    runner: host
    key_crn: ` + keyCRN + `
    size: 10GiB
    mode: offline
    backup_dir: /db2backup/billing
    schedules: {full: "@daily"}
`))
	if err != nil {
		t.Fatal(err)
	}
	d.Fleet = config.Static{F: f}
	if x, _ := find(run(t, d), "host agent for billing"); x.Status != preflight.Fail || !strings.Contains(x.Detail, "no host agent has ever polled") {
		t.Fatalf("no agent: %+v", x)
	}
	ctx := context.Background()
	poll := preflight.AgentPoll{Agent: preflight.AgentName("db2-billing.internal"), Interval: time.Minute, At: w.now.Add(-30 * time.Second)}
	if err := preflight.RecordAgentPoll(ctx, w.objs, poll); err != nil {
		t.Fatal(err)
	}
	if x, _ := find(run(t, d), "host agent for billing"); x.Status != preflight.OK {
		t.Fatalf("live agent: %+v", x)
	}
	poll.At = w.now.Add(-time.Hour)
	_ = preflight.RecordAgentPoll(ctx, w.objs, poll)
	if x, _ := find(run(t, d), "host agent for billing"); x.Status != preflight.Fail || !strings.Contains(x.Detail, "last polled 1h0m0s ago") {
		t.Fatalf("stale agent: %+v", x)
	}
	if got := preflight.AgentName("db2 host/01"); got != "db2-host-01" {
		t.Fatalf("AgentName: %q", got)
	}
}
