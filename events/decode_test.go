package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func jsonEqual(t testing.TB, got json.RawMessage, want string) bool {
	t.Helper()
	if want == "" {
		return len(got) == 0
	}
	var a, b bytes.Buffer
	if json.Compact(&a, got) != nil || json.Compact(&b, []byte(want)) != nil {
		return false
	}
	return a.String() == b.String()
}

func TestFromHTTPShapes(t *testing.T) {
	ping := readHTTPSample(t, "knative-ping.binary.http")
	emptyPing := ping
	emptyPing.body = nil
	emptyPing.header = ping.header.Clone()
	emptyPing.header.Del("Content-Type")
	enWithCE := readHTTPSample(t, "en-notification.http")
	enWithCE.header = enWithCE.header.Clone()
	for _, h := range []string{"Ce-Id", "Ce-Source", "Ce-Specversion", "Ce-Type"} {
		enWithCE.header.Set(h, ping.header.Get(h))
	}

	cases := []struct {
		name     string
		req      *http.Request
		shape    Shape
		id, typ  string
		subject  string
		time     string
		data     string // compact JSON; "" for none
		notifID  string
		tick     bool
		payload  string // Parse result type, "" when Parse must fail with ErrUnknownType
		logAlert bool
	}{
		{name: "knative ping, JSON data", req: ping.request(), shape: ShapeBinary,
			id: "d2faa29c-8088-410f-bb30-416085c52a0b", typ: TypeKnativePing, time: "2026-03-02T09:20:00.059682656Z",
			data: `{"message":"tick"}`, tick: true},
		{name: "knative ping, text data", req: readHTTPSample(t, "knative-ping-text.binary.http").request(), shape: ShapeBinary,
			id: "7f0c4a61-2d1e-4b7a-9a55-3c2b1d0e9f88", typ: TypeKnativePing, time: "2026-03-02T09:25:00.012345678Z",
			data: `{"body":"tick"}`, tick: true},
		{name: "knative ping, no data", req: emptyPing.request(), shape: ShapeBinary,
			id: "d2faa29c-8088-410f-bb30-416085c52a0b", typ: TypeKnativePing, time: "2026-03-02T09:20:00.059682656Z", tick: true},
		{name: "structured backup.completed", req: readHTTPSample(t, "backup-completed.structured.http").request(),
			shape: ShapeStructured, id: "run-20260302T020000Z-full/completed", typ: TypeBackupCompleted, subject: "sales-prod",
			time: "2026-03-02T02:41:18Z", data: string(readSample(t, "backup.completed.valid.json")), payload: "*events.BackupCompleted"},
		{name: "EN notification", req: readHTTPSample(t, "en-notification.http").request(), shape: ShapeEN,
			id: "run-20260303T020000Z-incremental/failed", typ: TypeBackupFailed, time: "2026-03-03T02:03:11Z",
			data: string(readSample(t, "backup.failed.valid.json")), notifID: "923873c0-2b42-4d4c-a9a0-c69339b16717",
			payload: "*events.BackupFailed"},
		{name: "EN notification with ce headers", req: enWithCE.request(), shape: ShapeEN,
			id: "run-20260303T020000Z-incremental/failed", typ: TypeBackupFailed, time: "2026-03-03T02:03:11Z",
			data: string(readSample(t, "backup.failed.valid.json")), notifID: "923873c0-2b42-4d4c-a9a0-c69339b16717",
			payload: "*events.BackupFailed"},
		{name: "EN periodic timer", req: readHTTPSample(t, "en-periodic-timer.http").request(), shape: ShapeEN,
			id: "3c9d2f6e-8a41-4b7e-b0c5-6f1e2d3a4b5c", typ: "com.ibm.cloud.event-notifications.periodic-timer:triggered",
			time: "2026-03-02T09:30:00Z", data: `{"timer":"keyguard-tick","schedule":"*/5 * * * *"}`,
			notifID: "0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b", tick: true},
		{name: "Cloud Logs alert", req: readHTTPSample(t, "cloud-logs-rotation.http").request(), shape: ShapeEN,
			id:  "997355d5-4542-47fd-9868-84cf5df71e1b_c9fe7539-e901-4745-b3ad-29ca0ae987a0",
			typ: "com.ibm.cloud.logs.StandardMoreThanAlertEvent:AlertTriggered", time: "2026-03-02T09:16:02Z",
			notifID: "5b7c9d1e-2f3a-4b5c-8d6e-7f8091a2b3c4", logAlert: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := FromHTTP(c.req)
			if err != nil {
				t.Fatalf("FromHTTP: %v", err)
			}
			if e.Shape != c.shape || e.ID != c.id || e.Type != c.typ || e.Subject != c.subject || e.NotificationID != c.notifID {
				t.Errorf("got shape %q id %q type %q subject %q notification %q", e.Shape, e.ID, e.Type, e.Subject, e.NotificationID)
			}
			if e.Source == "" {
				t.Error("no source")
			}
			if !e.Time.Equal(mustTime(t, c.time)) || e.Time.Location() != time.UTC {
				t.Errorf("time %v, want %s in UTC", e.Time, c.time)
			}
			if c.data != "" || !c.logAlert {
				if !jsonEqual(t, e.Data, c.data) {
					t.Errorf("data %s, want %s", e.Data, c.data)
				}
			}
			if IsTick(e) != c.tick {
				t.Errorf("IsTick = %v", !c.tick)
			}
			if IsCloudLogsAlert(e.Type) != c.logAlert {
				t.Errorf("IsCloudLogsAlert = %v", !c.logAlert)
			}
			p, err := Parse(e)
			switch {
			case c.payload == "" && !errors.Is(err, ErrUnknownType):
				t.Errorf("Parse error %v, want ErrUnknownType", err)
			case c.payload != "" && err != nil:
				t.Errorf("Parse: %v", err)
			case c.payload != "" && typeName(p) != c.payload:
				t.Errorf("Parse gave %s, want %s", typeName(p), c.payload)
			}
		})
	}
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func TestFromHTTPErrors(t *testing.T) {
	ping := readHTTPSample(t, "knative-ping.binary.http")
	en := readHTTPSample(t, "en-notification.http")
	withHeader := func(s httpSample, k, v string) *http.Request {
		r := s.request()
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
		return r
	}
	enBody := func(mutate func(m map[string]any)) *http.Request {
		var m map[string]any
		if err := json.Unmarshal(en.body, &m); err != nil {
			t.Fatal(err)
		}
		mutate(m)
		b, _ := json.Marshal(m)
		r := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(b))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	raw := func(ct string, body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/events", strings.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		return r
	}
	big := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(bytes.Repeat([]byte(" "), MaxBodyBytes+1)))
	capped := raw("application/json", string(en.body))
	capped.Body = http.MaxBytesReader(httptest.NewRecorder(), capped.Body, 64)

	cases := []struct {
		name string
		req  *http.Request
		want error
		text string
	}{
		{"body over MaxBodyBytes", big, ErrTooLarge, "larger than 262144 bytes"},
		{"caller's MaxBytesReader", capped, ErrTooLarge, "larger than 64 bytes"},
		{"nil request", nil, ErrInvalid, "no request"},
		{"binary without ce-id", withHeader(ping, "Ce-Id", ""), ErrInvalid, "missing id"},
		{"binary without id and source", func() *http.Request {
			r := withHeader(ping, "Ce-Id", "")
			r.Header.Del("Ce-Source")
			return r
		}(), ErrInvalid, "missing id, source"},
		{"binary with bad ce-time", withHeader(ping, "Ce-Time", "yesterday"), ErrInvalid, "time"},
		{"unsupported ce-specversion", withHeader(ping, "Ce-Specversion", "0.2"), ErrInvalid, `ce-specversion "0.2" is not a supported`},
		{"structured, not JSON", raw("application/cloudevents+json", "{not json"), ErrInvalid, "body is not valid JSON"},
		{"structured without type", raw("application/cloudevents+json", `{"specversion":"1.0","id":"1","source":"/s"}`), ErrInvalid, "missing type"},
		{"batch", raw("application/cloudevents-batch+json", `[]`), ErrInvalid, "batched"},
		{"EN without id", enBody(func(m map[string]any) { delete(m, "id") }), ErrInvalid, "missing id"},
		{"EN without specversion and type", enBody(func(m map[string]any) { delete(m, "specversion"); delete(m, "type") }), ErrInvalid, "missing specversion, type"},
		{"EN specversion 2.0", enBody(func(m map[string]any) { m["specversion"] = "2.0" }), ErrInvalid, `specversion "2.0" is not supported`},
		{"EN bad time", enBody(func(m map[string]any) { m["time"] = "03/03/2026" }), ErrInvalid, "time:"},
		{"EN id is a number", enBody(func(m map[string]any) { m["id"] = 5 }), ErrInvalid, "id must be a string"},
		{"EN data and data_base64", enBody(func(m map[string]any) { m["data_base64"] = "e30=" }), ErrInvalid, "both set"},
		{"EN bad base64", enBody(func(m map[string]any) { delete(m, "data"); m["data_base64"] = "%%%" }), ErrInvalid, "data_base64"},
		{"EN id too long", enBody(func(m map[string]any) { m["id"] = strings.Repeat("x", MaxAttrBytes+1) }), ErrTooLarge, "id is 1025 bytes"},
		{"body not JSON", raw("application/json", "tick"), ErrInvalid, "not a JSON object"},
		{"JSON array", raw("application/json", "[1,2]"), ErrInvalid, "not a JSON object"},
		{"empty body", raw("", ""), ErrInvalid, "body is empty"},
		{"text without ce headers", raw("text/plain", "tick"), ErrInvalid, `content type "text/plain" is neither`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromHTTP(c.req)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.text) {
				t.Errorf("error %q does not say %q", err, c.text)
			}
		})
	}
}

func TestFromHTTPLimitIsInclusive(t *testing.T) {
	en := readHTTPSample(t, "en-notification.http")
	body := bytes.TrimRight(en.body, "}\n ")
	pad := MaxBodyBytes - len(body) - len(`,"pad":""}`)
	body = append(body, []byte(`,"pad":"`+strings.Repeat("p", pad)+`"}`)...)
	if len(body) != MaxBodyBytes {
		t.Fatalf("body is %d bytes", len(body))
	}
	r := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if _, err := FromHTTP(r); err != nil {
		t.Fatalf("a body of exactly MaxBodyBytes: %v", err)
	}
}

func TestFromHTTPDataBase64AndText(t *testing.T) {
	cases := []struct{ body, data string }{
		{`{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"eyJhIjoxfQ=="}`, `{"a":1}`},
		{`{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"aGVsbG8="}`, `{"body":"hello"}`},
		{`{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"text/plain","data":"hello"}`, `{"body":"hello"}`},
		{`{"specversion":"1.0","id":"1","source":"s","type":"t","data":"hello"}`, `"hello"`},
		{`{"specversion":"1.0","id":"1","source":"s","type":"t","data":null}`, ``},
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body))
		e, err := FromHTTP(r)
		if err != nil {
			t.Errorf("%s: %v", c.body, err)
			continue
		}
		if !jsonEqual(t, e.Data, c.data) || !e.Time.IsZero() {
			t.Errorf("%s: data %s time %v, want %s and zero time", c.body, e.Data, e.Time, c.data)
		}
	}
}

func TestFromJobEnv(t *testing.T) {
	en := readEnvSample(t, "job-ibmendata.env")
	ce := readEnvSample(t, "job-ce-ping.env")
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	t.Run("ibmendata", func(t *testing.T) {
		e, err := FromJobEnv(getenv(with(en, "CE_TYPE", "ignored")))
		if err != nil {
			t.Fatal(err)
		}
		if e.Shape != ShapeJobEN || e.Type != TypeBackupRequested || e.NotificationID != "7d9e1f3a-4b5c-4d6e-8f70-8192a3b4c5d6" ||
			!e.Time.Equal(mustTime(t, "2026-03-04T08:00:00Z")) {
			t.Errorf("got %+v", e)
		}
		if p, err := Parse(e); err != nil || p.(*BackupRequested).Database != "sales-prod" {
			t.Errorf("Parse: %v %v", p, err)
		}
	})
	t.Run("CE variables", func(t *testing.T) {
		e, err := FromJobEnv(getenv(ce))
		if err != nil {
			t.Fatal(err)
		}
		if e.Shape != ShapeJobCE || e.ID != "abcdefgh-abcd-abcd-abcd-1a2b3c4d5e6f" || !IsTick(e) ||
			e.Source != "/apis/v1/namespaces/81fvkfqi3n6/pingsources/keyguard-tick" ||
			!e.Time.Equal(mustTime(t, "2026-03-02T09:20:00.429658447Z")) || !jsonEqual(t, e.Data, `{"message":"tick"}`) {
			t.Errorf("got %+v", e)
		}
	})
	t.Run("CE text data is wrapped", func(t *testing.T) {
		e, err := FromJobEnv(getenv(with(ce, "CE_DATA", "tick", "CE_TIME", "")))
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, e.Data, `{"body":"tick"}`) || !e.Time.IsZero() {
			t.Errorf("data %s time %v", e.Data, e.Time)
		}
	})
	errCases := []struct {
		name string
		env  map[string]string
		want error
		text string
	}{
		{"no event", map[string]string{"CE_JOB": "keyguard-runner", "CE_PROJECT_ID": "p", "JOB_INDEX": "0"}, ErrNoEvent, "no event"},
		{"CE_TYPE only", map[string]string{"CE_TYPE": TypeTick}, ErrInvalid, "missing specversion, id, source"},
		{"bad CE_TIME", with(ce, "CE_TIME", "noon"), ErrInvalid, "CE_TIME"},
		{"CE_ID too long", with(ce, "CE_ID", strings.Repeat("i", MaxAttrBytes+1)), ErrTooLarge, "id is"},
		{"CE_DATA too large", with(ce, "CE_DATA", strings.Repeat("d", MaxBodyBytes+1)), ErrTooLarge, "CE_DATA"},
		{"ibmendata too large", with(en, "ibmendata", strings.Repeat("d", MaxBodyBytes+1)), ErrTooLarge, "ibmendata"},
		{"ibmendata not JSON", with(en, "ibmendata", "tick"), ErrInvalid, "ibmendata: "},
		{"ibmendata without source", with(en, "ibmendata", `{"specversion":"1.0","id":"1","type":"t"}`), ErrInvalid, "missing source"},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromJobEnv(getenv(c.env))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("error %v, want %v saying %q", err, c.want, c.text)
			}
		})
	}
	if _, err := FromJobEnv(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil getenv: %v", err)
	}
	if !errors.Is(ErrNoEvent, ErrInvalid) {
		t.Error("ErrNoEvent does not wrap ErrInvalid")
	}
}

func TestParseCloudLogsRotation(t *testing.T) {
	alertType := "com.ibm.cloud.logs.keyguard-kms-rotate:AlertTriggered"
	key := "crn:v1:bluemix:public:kms:us-south:a/acct:inst:key:k1"
	alert := func(data string) Event {
		return Event{ID: "a1", Source: "crn:logs", Type: alertType, Time: mustTime(t, "2026-03-02T09:16:02Z"), Data: json.RawMessage(data)}
	}
	fromSample := func(name string) Event {
		e, err := FromHTTP(readHTTPSample(t, name).request())
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	cases := []struct {
		name    string
		ev      Event
		ok      bool
		err     error
		version string
		at      string
	}{
		{name: "rotation sample", ev: fromSample("cloud-logs-rotation.http"), ok: true,
			version: "0c1d2e3f-0000-4000-8000-000000000002", at: "2026-03-02T09:14:58.41Z"},
		{name: "disable sample", ev: fromSample("cloud-logs-disable.http")},
		{name: "string log example, no version, no eventTime", ok: true, at: "2026-03-02T09:14:58.41Z",
			ev: alert(`{"latest_event_timestamp":1772442898410,"log_example":"{\"action\":\"kms.secrets.rotate\",\"target\":{\"id\":\"` + key + `\"}}"}`)},
		{name: "wrapped one level down, string responseData", ok: true, version: "v9", at: "2026-03-02T09:16:02Z",
			ev: alert(`{"log_example":{"json":{"action":"kms.secrets.rotate","outcome":"success","target":{"id":"` + key + `"},"responseData":"{\"keyVersionId\":\"v9\"}"}}}`)},
		{name: "array of log lines", ok: true, at: "2026-03-02T08:00:00Z",
			ev: alert(`{"log_example":[{"action":"kms.secrets.read"},{"action":"kms.secrets.rotate","eventTime":"2026-03-02T08:00:00Z","target":{"id":"` + key + `"}}]}`)},
		{name: "failed rotation", ev: alert(`{"log_example":{"action":"kms.secrets.rotate","outcome":"failure","target":{"id":"` + key + `"}}}`)},
		{name: "acknowledgement is not a rotation", ev: alert(`{"log_example":{"action":"kms.secrets-event.ack","target":{"id":"` + key + `"}}}`)},
		{name: "no log example", ev: alert(`{"status":"triggered"}`)},
		{name: "truncated log example", ev: alert(`{"log_example":"{\"action\":\"kms.secrets.ro","log_example_truncated":true}`), err: ErrInvalid},
		{name: "rotation without target", ev: alert(`{"log_example":{"action":"kms.secrets.rotate"}}`), err: ErrInvalid},
		{name: "rotation without any time", ev: func() Event {
			e := alert(`{"log_example":{"action":"kms.secrets.rotate","target":{"id":"` + key + `"}}}`)
			e.Time = time.Time{}
			return e
		}(), err: ErrInvalid},
		{name: "data not an object", ev: alert(`"tick"`), err: ErrInvalid},
		{name: "no data", ev: alert(``), err: ErrInvalid},
		{name: "not an alert", ev: Event{Type: TypeKnativePing}, err: ErrUnknownType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kr, ok, err := ParseCloudLogsRotation(c.ev)
			if c.err != nil {
				if !errors.Is(err, c.err) || ok {
					t.Fatalf("ok %v error %v, want %v", ok, err, c.err)
				}
				return
			}
			if err != nil || ok != c.ok {
				t.Fatalf("ok %v error %v, want ok %v", ok, err, c.ok)
			}
			if !ok {
				return
			}
			if kr.KeyCRN == "" || kr.DetectedBy != "cloud-logs" || kr.NewVersion != c.version || !kr.RotatedAt.Equal(mustTime(t, c.at)) {
				t.Errorf("got %+v", kr)
			}
			if c.version != "" {
				if err := kr.Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
			}
		})
	}
}

func TestIsTick(t *testing.T) {
	cases := map[string]bool{
		TypeTick: true, TypeKnativePing: true,
		"com.ibm.cloud.event-notifications.periodic-timer:triggered": true,
		"com.ibm.eventnotifications.PeriodicTimer":                   true,
		"periodic_timer":                      true,
		TypeBackupCompleted:                   false,
		"com.ibm.cloud.logs.x:AlertTriggered": false,
		"":                                    false,
	}
	for typ, want := range cases {
		if got := IsTick(Event{Type: typ}); got != want {
			t.Errorf("IsTick(%q) = %v", typ, got)
		}
	}
}

func TestEncode(t *testing.T) {
	at := time.Date(2026, 3, 2, 2, 41, 18, 0, time.FixedZone("CET", 3600))
	valid, err := DecodeData(TypeBackupCompleted, readSample(t, "backup.completed.valid.json"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := Encode("run-1/completed", "/keyguard/runner", at, valid)
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != TypeBackupCompleted || e.Time.Location() != time.UTC || !e.Time.Equal(at) {
		t.Errorf("got %+v", e)
	}
	back, err := Parse(e)
	if err != nil {
		t.Fatalf("Parse(Encode(p)): %v", err)
	}
	if *back.(*BackupCompleted) != *valid.(*BackupCompleted) {
		t.Errorf("round trip changed the payload: %+v", back)
	}

	var typedNil *BackupCompleted
	errCases := []struct {
		name       string
		id, source string
		p          Payload
		want       error
	}{
		{"invalid payload", "1", "s", &BackupCompleted{Database: "d"}, ErrInvalid},
		{"nil payload", "1", "s", nil, ErrInvalid},
		{"typed nil payload", "1", "s", typedNil, ErrInvalid},
		{"no id", "", "s", valid, ErrInvalid},
		{"no source", "1", "", valid, ErrInvalid},
		{"foreign payload", "1", "s", foreign{}, ErrUnknownType},
	}
	for _, c := range errCases {
		if _, err := Encode(c.id, c.source, at, c.p); !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
}

type foreign struct{}

func (foreign) EventType() string { return "com.example.other" }
func (foreign) Validate() error   { return nil }
