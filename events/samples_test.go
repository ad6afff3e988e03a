package events

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// httpSample is a request stored in testdata as text: request line, headers, blank line, body.
type httpSample struct {
	method, target string
	header         http.Header
	body           []byte
}

func readHTTPSample(t testing.TB, name string) httpSample {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := strings.Cut(string(raw), "\n\n")
	if !ok {
		t.Fatalf("%s: no blank line between headers and body", name)
	}
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader(head + "\n\n")))
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("%s: request line: %v", name, err)
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		t.Fatalf("%s: bad request line %q", name, line)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("%s: headers: %v", name, err)
	}
	return httpSample{method: f[0], target: f[1], header: http.Header(hdr), body: []byte(strings.TrimSuffix(body, "\n"))}
}

func (s httpSample) request() *http.Request {
	r := httptest.NewRequest(s.method, s.target, bytes.NewReader(s.body))
	for k, vs := range s.header {
		r.Header[k] = append([]string(nil), vs...)
	}
	return r
}

// readEnvSample reads KEY=VALUE lines (# comments) into a getenv function.
func readEnvSample(t testing.TB, name string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", name, line)
		}
		env[k] = v
	}
	return env
}

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleName is the file stem of a keyguard type: backup.completed for dev.keyguard.backup.completed.
func sampleName(typ string) string { return strings.TrimPrefix(typ, Prefix) }

func compileSchema(t testing.TB, typ string) *jsonschema.Schema {
	t.Helper()
	b, ok := Schema(typ)
	if !ok {
		t.Fatalf("no schema for %s", typ)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("schema of %s: %v", typ, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	loc := "mem:///" + sampleName(typ) + ".schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		t.Fatalf("schema of %s: %v", typ, err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		t.Fatalf("compile schema of %s: %v", typ, err)
	}
	return sch
}

func validateSchema(sch *jsonschema.Schema, data []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

// isSentinel reports whether err wraps one of the errors callers map to a 4xx.
func isSentinel(err error) bool {
	return errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnknownType) || errors.Is(err, ErrTooLarge)
}
