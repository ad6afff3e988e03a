package jobevent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/jobevent"
)

func sampleRun() events.BackupStarted {
	start := time.Date(2026, 3, 2, 2, 0, 5, 123456789, time.UTC)
	return events.BackupStarted{
		Database: "sales-prod", RunID: "sales-prod-full-20260302T020000Z-a0", Type: events.Full, Mode: events.Online,
		Slot: time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC), StartedAt: start, LeaseUntil: start.Add(4 * time.Hour),
		KeyCRN:     "crn:v1:bluemix:public:kms:us-south:a/0123:inst:key:aaaa",
		KeyVersion: "0c1d2e3f-0000-4000-8000-000000000001", Executor: "db2cli",
	}
}

func TestRoundTripThroughFromJobEnv(t *testing.T) {
	run := sampleRun()
	vars, err := jobevent.Env(run, jobevent.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vars) != 2 || vars[0].Name != jobevent.VarEvent || vars[1] != (jobevent.Var{Name: jobevent.VarRunID, Value: run.RunID}) {
		t.Fatalf("vars %v", vars)
	}
	env := map[string]string{}
	for _, v := range vars {
		env[v.Name] = v.Value
	}
	e, err := events.FromJobEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("FromJobEnv: %v", err)
	}
	if e.Shape != events.ShapeJobEN || e.Type != events.TypeBackupStarted || e.ID != jobevent.EventID(run.RunID) ||
		e.Source != jobevent.DefaultSource || e.Subject != run.Database || !e.Time.Equal(run.StartedAt) {
		t.Fatalf("event %+v", e)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(e.NotificationID) {
		t.Fatalf("notification_id %q is not UUID-shaped", e.NotificationID)
	}
	p, err := events.Parse(e)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got, ok := p.(*events.BackupStarted)
	if !ok || !reflect.DeepEqual(*got, run) {
		t.Fatalf("payload %#v, want %#v", p, run)
	}
}

// The same JSON is what Event Notifications would POST to an app: FromHTTP takes it as EN JSON.
func TestNotificationIsENShapedForApps(t *testing.T) {
	body, err := jobevent.Notification(sampleRun(), jobevent.Origin{Source: "keyguard/test", SourceID: "src:api"})
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"specversion", "id", "source", "type", "time", "data", "ibmensourceid", "ibmendefaultshort", "ibmendefaultlong", "notification_id"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("notification lacks %s", k)
		}
	}
	if fields["ibmensourceid"] != "src:api" || fields["source"] != "keyguard/test" {
		t.Errorf("origin not applied: %v %v", fields["ibmensourceid"], fields["source"])
	}
	if _, ok := fields["data"].(map[string]any); !ok {
		t.Errorf("data is %T, want a JSON object", fields["data"])
	}
	req := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	e, err := events.FromHTTP(req)
	if err != nil || e.Shape != events.ShapeEN || e.Type != events.TypeBackupStarted {
		t.Fatalf("FromHTTP: %+v, %v", e, err)
	}
}

func TestNotificationIsDeterministic(t *testing.T) {
	a, err := jobevent.Notification(sampleRun(), jobevent.Origin{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := jobevent.Notification(sampleRun(), jobevent.Origin{})
	if !bytes.Equal(a, b) {
		t.Fatal("same run gave different notifications")
	}
	other := sampleRun()
	other.RunID += "x"
	c, _ := jobevent.Notification(other, jobevent.Origin{})
	var na, nc struct {
		NotificationID string `json:"notification_id"`
	}
	_ = json.Unmarshal(a, &na)
	_ = json.Unmarshal(c, &nc)
	if na.NotificationID == nc.NotificationID {
		t.Fatal("different runs share a notification_id")
	}
}

func TestInvalidRunIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*events.BackupStarted)
	}{
		{"no run id", func(r *events.BackupStarted) { r.RunID = "" }},
		{"no database", func(r *events.BackupStarted) { r.Database = "" }},
		{"bad type", func(r *events.BackupStarted) { r.Type = "weekly" }},
		{"lease before start", func(r *events.BackupStarted) { r.LeaseUntil = r.StartedAt }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := sampleRun()
			tt.mutate(&run)
			if _, err := jobevent.Env(run, jobevent.Origin{}); !errors.Is(err, events.ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
		})
	}
}

func TestVarString(t *testing.T) {
	if s := (jobevent.Var{Name: "A", Value: "b=c"}).String(); s != "A=b=c" {
		t.Fatalf("%q", s)
	}
}
