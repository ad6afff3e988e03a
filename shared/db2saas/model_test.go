package db2saas_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/shared/db2saas"
)

func TestParseBackupListSample(t *testing.T) {
	data, err := os.ReadFile("testdata/list.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := db2saas.ParseBackupList(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d backups", len(got))
	}
	want0 := db2saas.Backup{Type: "on_demand", Status: db2saas.StatusRunning, RawStatus: "running",
		CreatedAt: time.Date(2026, 3, 2, 2, 0, 1, 0, time.UTC), Duration: 95 * time.Second}
	want0.ID = got[0].ID
	if got[0] != want0 || !strings.Contains(got[0].ID, ":backup:") {
		t.Errorf("backups[0] = %+v, want %+v", got[0], want0)
	}
	if b := got[1]; b.Type != "scheduled" || b.Status != db2saas.StatusCompleted || b.SizeBytes != 4_000_000_000 ||
		b.EndedAt() != time.Date(2026, 3, 1, 1, 2, 11, 0, time.UTC) {
		t.Errorf("backups[1] = %+v", b)
	}
}

func TestParseBackupList(t *testing.T) {
	const entry = `"id":"b1","status":"completed","created_at":"2026-03-01T01:00:00Z"`
	for _, tc := range []struct {
		name, body string
		n          int
		check      func(db2saas.Backup) bool
		bad        string // substring of the error; "" means success
	}{
		{name: "empty list", body: `{"backups":[]}`},
		{name: "null list", body: `{"backups":null}`},
		{name: "extra fields ignored", body: `{"backups":[{` + entry + `,"started_at":"x","region":"us-south"}],"total":1}`, n: 1},
		{name: "size as integral float", body: `{"backups":[{` + entry + `,"size":4e9}]}`, n: 1,
			check: func(b db2saas.Backup) bool { return b.SizeBytes == 4_000_000_000 }},
		{name: "no zone read as UTC", body: `{"backups":[{"id":"b","status":"running","created_at":"2026-03-01T01:00:00.5"}]}`, n: 1,
			check: func(b db2saas.Backup) bool { return b.CreatedAt.Equal(time.Date(2026, 3, 1, 1, 0, 0, 5e8, time.UTC)) }},
		{name: "offset converted to UTC", body: `{"backups":[{"id":"b","status":"running","created_at":"2026-03-01T03:00:00+02:00"}]}`, n: 1,
			check: func(b db2saas.Backup) bool { return b.CreatedAt == time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC) }},
		{name: "unknown status kept", body: `{"backups":[{"id":"b","status":"Archiving","created_at":"2026-03-01T01:00:00Z"}]}`, n: 1,
			check: func(b db2saas.Backup) bool { return b.Status == db2saas.StatusUnknown && b.RawStatus == "Archiving" }},
		{name: "missing backups", body: `{"items":[]}`, bad: `no "backups" field`},
		{name: "not an object", body: `[1,2]`, bad: "backup list"},
		{name: "null", body: `null`, bad: `no "backups" field`},
		{name: "empty", body: ``, bad: "EOF"},
		{name: "trailing data", body: `{"backups":[]} {}`, bad: "trailing data"},
		{name: "entry not an object", body: `{"backups":[42]}`, bad: "backups[0]"},
		{name: "no id", body: `{"backups":[{"status":"running","created_at":"2026-03-01T01:00:00Z"}]}`, bad: "id is required"},
		{name: "no status", body: `{"backups":[{"id":"b","created_at":"2026-03-01T01:00:00Z"}]}`, bad: "status is required"},
		{name: "no created_at", body: `{"backups":[{"id":"b","status":"running"}]}`, bad: "created_at is required"},
		{name: "bad created_at", body: `{"backups":[{"id":"b","status":"running","created_at":"yesterday"}]}`, bad: "not an RFC 3339"},
		{name: "negative size", body: `{"backups":[{` + entry + `,"size":-1}]}`, bad: "size"},
		{name: "fractional duration", body: `{"backups":[{` + entry + `,"duration":1.5}]}`, bad: "duration"},
		{name: "quoted number size", body: `{"backups":[{` + entry + `,"size":"12"}]}`, n: 1,
			check: func(b db2saas.Backup) bool { return b.SizeBytes == 12 }},
		{name: "text size", body: `{"backups":[{` + entry + `,"size":"twelve"}]}`, bad: "backups[0]"},
		{name: "boolean size", body: `{"backups":[{` + entry + `,"size":true}]}`, bad: "backups[0]"},
		{name: "huge duration", body: `{"backups":[{` + entry + `,"duration":99999999999999}]}`, bad: "duration"},
		{name: "second entry bad", body: `{"backups":[{` + entry + `},{"id":""}]}`, bad: "backups[1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db2saas.ParseBackupList([]byte(tc.body))
			if tc.bad != "" {
				if err == nil || !errors.Is(err, db2saas.ErrMalformedResponse) || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("err = %v, want ErrMalformedResponse mentioning %q", err, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || len(got) != tc.n {
				t.Fatalf("got %v, want %d entries (non-nil)", got, tc.n)
			}
			if tc.check != nil && !tc.check(got[0]) {
				t.Fatalf("unexpected entry %+v", got[0])
			}
		})
	}
}

func TestParseBackupListTooLarge(t *testing.T) {
	big := `{"backups":[],"pad":"` + strings.Repeat("x", db2saas.MaxResponseBytes) + `"}`
	if _, err := db2saas.ParseBackupList([]byte(big)); !errors.Is(err, db2saas.ErrMalformedResponse) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]db2saas.Status{
		"running": db2saas.StatusRunning, "RUNNING": db2saas.StatusRunning, " in_progress ": db2saas.StatusRunning,
		"completed": db2saas.StatusCompleted, "Success": db2saas.StatusCompleted,
		"failed": db2saas.StatusFailed, "Cancelled": db2saas.StatusFailed,
		"": db2saas.StatusUnknown, "archiving": db2saas.StatusUnknown,
	} {
		if got := db2saas.ParseStatus(in); got != want {
			t.Errorf("ParseStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseTask(t *testing.T) {
	sample, err := os.ReadFile("testdata/task.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body, want string
		bad              bool
	}{
		{name: "sample", body: string(sample), want: "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/0123456789abcdef0123456789abcdef:11111111-2222-4333-8444-555555555555:task:2f6e1d7c-3b4a-4f5e-9d8c-7b6a5f4e3d2c"},
		{name: "empty body", body: "  "},
		{name: "no task", body: `{}`},
		{name: "null task", body: `{"task":null}`},
		{name: "garbage", body: `<html>`, bad: true},
		{name: "id not a string", body: `{"task":{"id":7}}`, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db2saas.ParseTask([]byte(tc.body))
			if tc.bad != (err != nil) {
				t.Fatalf("err = %v, bad %v", err, tc.bad)
			}
			if !tc.bad && got.ID != tc.want {
				t.Fatalf("id = %q, want %q", got.ID, tc.want)
			}
		})
	}
}

func TestEncodeProfile(t *testing.T) {
	// The form IBM's SDK tests send for x-db-profile.
	const in = "crn:v1:staging:public:dashdb-for-transactions:us-south:a/e7e3e87b512f474381c0684a5ecbba03:39269573-e43f-43e8-8b93-09f44c2ff875::"
	const want = "crn%3Av1%3Astaging%3Apublic%3Adashdb-for-transactions%3Aus-south%3Aa%2Fe7e3e87b512f474381c0684a5ecbba03%3A39269573-e43f-43e8-8b93-09f44c2ff875%3A%3A"
	if got := db2saas.EncodeProfile(in); got != want {
		t.Fatalf("EncodeProfile = %q, want %q", got, want)
	}
}

func TestLocation(t *testing.T) {
	const inst = "crn:v1:bluemix:public:dashdb-for-transactions:us-south:a/acc:guid::"
	for _, id := range []string{"b1", inst + "backup:x", "with/slash and space%"} {
		loc := db2saas.Location(inst, id)
		if strings.Count(loc[len(db2saas.LocationScheme):], "/") != 1 {
			t.Errorf("Location(%q) = %q: not exactly one separator", id, loc)
		}
		gotInst, gotID, err := db2saas.ParseLocation(loc)
		if err != nil || gotInst != inst || gotID != id {
			t.Errorf("ParseLocation(%q) = %q, %q, %v", loc, gotInst, gotID, err)
		}
	}
	for _, bad := range []string{"", "s3://a/b", "db2saas://", "db2saas://a", "db2saas:///b", "db2saas://a/", "db2saas://a/b/c", "db2saas://%zz/b"} {
		if _, _, err := db2saas.ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q) accepted", bad)
		}
	}
}
