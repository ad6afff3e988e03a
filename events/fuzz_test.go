package events

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Every fuzzer checks: no panic, errors wrap a sentinel, and a success is well formed.

func FuzzDecodeData(f *testing.F) {
	for i, typ := range Types() {
		f.Add(uint8(i), readSample(f, sampleName(typ)+".valid.json"))
		f.Add(uint8(i), readSample(f, sampleName(typ)+".invalid.json"))
	}
	f.Add(uint8(255), []byte(`{}`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		typ := Prefix + "unknown"
		if types := Types(); int(which) < len(types) {
			typ = types[which]
		}
		p, err := DecodeData(typ, data)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("decoded payload does not validate: %v", err)
		}
		// What DecodeData accepts, Encode writes back in a form DecodeData accepts again.
		e, err := Encode("id", "source", time.Unix(0, 0), p)
		if err != nil {
			t.Fatalf("Encode of a decoded payload: %v", err)
		}
		if _, err := Parse(e); err != nil {
			t.Fatalf("Parse(Encode(p)): %v (data %s)", err, e.Data)
		}
	})
}

// httpSelectors turn (body, selector, attr) into a request: the selector picks the shape.
func fuzzRequest(body []byte, sel uint8, attr string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(body))
	binary := func(ct string) {
		r.Header.Set("Ce-Specversion", "1.0")
		r.Header.Set("Ce-Id", "id-1")
		r.Header.Set("Ce-Source", "/apis/v1/namespaces/ns/pingsources/tick")
		r.Header.Set("Ce-Type", TypeKnativePing)
		r.Header.Set("Ce-Time", attr)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
	}
	switch sel % 8 {
	case 1:
		r.Header.Set("Content-Type", "application/json")
	case 2:
		r.Header.Set("Content-Type", "application/cloudevents+json")
	case 3:
		binary("application/json")
	case 4:
		binary("text/plain")
	case 5:
		binary("")
		r.Header.Set("Ce-Id", attr)
		r.Header.Del("Ce-Time")
	case 6:
		r.Header.Set("Content-Type", attr)
	case 7:
		r.Header.Set("Ce-Specversion", attr)
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

func FuzzFromHTTP(f *testing.F) {
	seeds := []struct {
		name string
		sel  uint8
	}{
		{"knative-ping.binary.http", 3}, {"knative-ping-text.binary.http", 4},
		{"backup-completed.structured.http", 2}, {"en-notification.http", 1},
		{"en-periodic-timer.http", 0}, {"cloud-logs-rotation.http", 1}, {"cloud-logs-disable.http", 3},
	}
	for _, s := range seeds {
		f.Add(readHTTPSample(f, s.name).body, s.sel, "2026-03-02T09:20:00Z")
	}
	f.Add([]byte(`[{"specversion":"1.0"}]`), uint8(6), "application/cloudevents-batch+json")
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"aGk="}`), uint8(7), "1.0")
	f.Fuzz(func(t *testing.T, body []byte, sel uint8, attr string) {
		e, err := FromHTTP(fuzzRequest(body, sel, attr))
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		checkEvent(t, e)
	})
}

func FuzzFromJobEnv(f *testing.F) {
	en := readEnvSample(f, "job-ibmendata.env")
	ce := readEnvSample(f, "job-ce-ping.env")
	f.Add(en["ibmendata"], "", "", "", "", "")
	f.Add("", ce["CE_SPECVERSION"], ce["CE_ID"], ce["CE_TYPE"], ce["CE_TIME"], ce["CE_DATA"])
	f.Add("", "1.0", "id", TypeTick, "", "tick")
	f.Add(`{"specversion":"1.0"}`, "", "", "", "", "")
	f.Fuzz(func(t *testing.T, ibmendata, specversion, id, typ, tm, data string) {
		env := map[string]string{"ibmendata": ibmendata, "CE_SPECVERSION": specversion, "CE_ID": id,
			"CE_SOURCE": "/apis/v1/namespaces/ns/pingsources/tick", "CE_TYPE": typ, "CE_TIME": tm, "CE_DATA": data}
		if id == "" {
			delete(env, "CE_SOURCE")
		}
		e, err := FromJobEnv(getenv(env))
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		checkEvent(t, e)
		if e.Shape != ShapeJobEN && e.Shape != ShapeJobCE {
			t.Fatalf("shape %q", e.Shape)
		}
	})
}

func FuzzParseCloudLogsRotation(f *testing.F) {
	for _, name := range []string{"cloud-logs-rotation.http", "cloud-logs-disable.http"} {
		e, err := FromHTTP(readHTTPSample(f, name).request())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Type, []byte(e.Data))
	}
	f.Add("com.ibm.cloud.logs.a:AlertTriggered", []byte(`{"log_example":[{"json":"{\"action\":\"kms.secrets.rotate\",\"target\":{\"id\":\"k\"}}"}]}`))
	f.Add(TypeKnativePing, []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		e := Event{ID: "1", Source: "s", Type: typ, Time: time.Unix(1772442962, 0), Data: json.RawMessage(data)}
		kr, ok, err := ParseCloudLogsRotation(e)
		if err != nil {
			if ok || !isSentinel(err) {
				t.Fatalf("ok %v with error %v (no sentinel?)", ok, err)
			}
			return
		}
		if !ok {
			return
		}
		if kr.KeyCRN == "" || kr.DetectedBy != "cloud-logs" || kr.RotatedAt.IsZero() {
			t.Fatalf("incomplete rotation %+v", kr)
		}
		if kr.NewVersion != "" {
			if err := kr.Validate(); err != nil {
				t.Fatalf("rotation with a version does not validate: %v", err)
			}
		}
	})
}

// checkEvent asserts what every decoded event promises.
func checkEvent(t *testing.T, e Event) {
	t.Helper()
	if e.ID == "" || e.Source == "" || e.Type == "" {
		t.Fatalf("event without id, source or type: %+v", e)
	}
	for _, a := range []string{e.ID, e.Source, e.Type, e.Subject} {
		if len(a) > MaxAttrBytes {
			t.Fatalf("attribute of %d bytes", len(a))
		}
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		t.Fatalf("data is not JSON: %q", e.Data)
	}
	if !e.Time.IsZero() && e.Time.Location() != time.UTC {
		t.Fatalf("time %v not in UTC", e.Time)
	}
	if e.Shape == "" {
		t.Fatal("no shape")
	}
}
