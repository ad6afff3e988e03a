package objstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/objstore/objstoretest"
)

const bucket = "keyguard-test"

// fakeS3 starts gofakes3 in process behind next (which may record or replace answers) and
// returns its URL.
func fakeS3(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	var h http.Handler = gofakes3.New(backend).Server()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func hmacClient(t *testing.T, endpoint string) *s3.S3 {
	t.Helper()
	c, err := objstore.NewCOSClient(objstore.Options{Endpoint: endpoint, HMACKeyID: "id", HMACSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func randomPrefix(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "t-" + hex.EncodeToString(b)
}

// TestCOSContractGofakes3 runs the contract through the real SDK against gofakes3, each subtest
// under its own prefix of one bucket. gofakes3 answers 412 to If-Match on a missing key (S3 and
// versitygw: 404); the versitygw run in test/integration holds the strict contract.
func TestCOSContractGofakes3(t *testing.T) {
	client := hmacClient(t, fakeS3(t, nil))
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return objstore.NewCOS(client, bucket, randomPrefix(t))
	}, objstoretest.MissingIfMatchIsPrecondition())
}

func TestCOSPrefixIsolation(t *testing.T) {
	ctx := context.Background()
	client := hmacClient(t, fakeS3(t, nil))
	a := objstore.NewCOS(client, bucket, "tenant-a") // a slash is added
	b := objstore.NewCOS(client, bucket, "tenant-b/")
	root := objstore.NewCOS(client, bucket, "")
	if _, err := a.Put(ctx, "state/x.json", []byte("a"), objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Get(ctx, "state/x.json"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("b sees a's object: %v", err)
	}
	got, err := root.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "tenant-a/state/x.json" {
		t.Fatalf("root List = %+v, want tenant-a/state/x.json", got)
	}
	list, err := a.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Key != "state/x.json" {
		t.Fatalf("a.List = %+v, want state/x.json relative to the prefix", list)
	}
}

// TestCOSSendsConditionalHeaders checks the headers on the wire and that they are signed.
func TestCOSSendsConditionalHeaders(t *testing.T) {
	ctx := context.Background()
	type seen struct{ ifMatch, ifNoneMatch, signed string }
	var mu sync.Mutex
	var puts []seen
	endpoint := fakeS3(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut {
				mu.Lock()
				puts = append(puts, seen{r.Header.Get("If-Match"), r.Header.Get("If-None-Match"), r.Header.Get("Authorization")})
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	})
	s := objstore.NewCOS(hmacClient(t, endpoint), bucket, "")
	e1, err := s.Put(ctx, "k", []byte("1"), objstore.Cond{IfNoneMatch: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", []byte("2"), objstore.Cond{IfMatch: e1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k", []byte("3"), objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	want := []struct{ ifMatch, ifNoneMatch string }{{"", "*"}, {e1, ""}, {"", ""}}
	if len(puts) != len(want) {
		t.Fatalf("server saw %d puts, want %d", len(puts), len(want))
	}
	for i, w := range want {
		p := puts[i]
		if p.ifMatch != w.ifMatch || p.ifNoneMatch != w.ifNoneMatch {
			t.Errorf("put %d: If-Match %q If-None-Match %q, want %q %q", i, p.ifMatch, p.ifNoneMatch, w.ifMatch, w.ifNoneMatch)
		}
		hdr := strings.ToLower(p.signed)
		if w.ifMatch != "" && !strings.Contains(hdr, "if-match") {
			t.Errorf("put %d: If-Match not among the signed headers: %s", i, p.signed)
		}
		if w.ifNoneMatch != "" && !strings.Contains(hdr, "if-none-match") {
			t.Errorf("put %d: If-None-Match not among the signed headers: %s", i, p.signed)
		}
	}
}

// TestCOSErrorClassification serves canned S3 errors and checks what Store reports, and that
// the SDK's retries are bounded.
func TestCOSErrorClassification(t *testing.T) {
	errXML := func(code string) string {
		return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>m</Message></Error>`
	}
	cases := []struct {
		name      string
		status    int
		code      string
		notFound  bool
		precond   bool
		transient bool
		attempts  int // requests the server sees for one Put (MaxRetries 2)
	}{
		{"precondition", 412, "PreconditionFailed", false, true, false, 1},
		{"no such key", 404, "NoSuchKey", true, false, false, 1},
		{"no such bucket is not a missing key", 404, "NoSuchBucket", false, false, false, 1},
		{"forbidden", 403, "AccessDenied", false, false, false, 1},
		{"bad request", 400, "InvalidArgument", false, false, false, 1},
		{"internal error", 500, "InternalError", false, false, true, 3},
		{"unavailable", 503, "ServiceUnavailable", false, false, true, 3},
		{"slow down", 503, "SlowDown", false, false, true, 3},
		{"too many requests", 429, "TooManyRequests", false, false, true, 3},
		{"not implemented", 501, "NotImplemented", false, false, false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(c.status)
				fmt.Fprint(w, errXML(c.code))
			}))
			defer srv.Close()
			s := objstore.NewCOS(hmacClient(t, srv.URL), bucket, "p")
			_, err := s.Put(context.Background(), "k", []byte("x"), objstore.Cond{IfMatch: `"e"`})
			if err == nil {
				t.Fatal("Put succeeded")
			}
			if got := errors.Is(err, objstore.ErrNotFound); got != c.notFound {
				t.Errorf("Is(ErrNotFound) = %v, want %v (%v)", got, c.notFound, err)
			}
			if got := errors.Is(err, objstore.ErrPrecondition); got != c.precond {
				t.Errorf("Is(ErrPrecondition) = %v, want %v (%v)", got, c.precond, err)
			}
			if got := objstore.IsTransient(err); got != c.transient {
				t.Errorf("IsTransient = %v, want %v (%v)", got, c.transient, err)
			}
			if got := int(hits.Load()); got != c.attempts {
				t.Errorf("server saw %d requests, want %d", got, c.attempts)
			}
			if !strings.Contains(err.Error(), "p/k") {
				t.Errorf("error %q does not name the key", err)
			}
		})
	}
}

func TestCOSConnectionErrors(t *testing.T) {
	t.Run("refused is transient", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c, err := objstore.NewCOSClient(objstore.Options{Endpoint: "http://" + addr, HMACKeyID: "a", HMACSecret: "b", MaxRetries: -1})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = objstore.NewCOS(c, bucket, "").Get(context.Background(), "k")
		if err == nil || !objstore.IsTransient(err) {
			t.Fatalf("Get on a closed port: %v, want a transient error", err)
		}
	})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer slow.Close()
	t.Run("client timeout is transient", func(t *testing.T) {
		c, err := objstore.NewCOSClient(objstore.Options{Endpoint: slow.URL, HMACKeyID: "a", HMACSecret: "b", MaxRetries: -1,
			HTTPClient: &http.Client{Timeout: 50 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = objstore.NewCOS(c, bucket, "").Get(context.Background(), "k")
		if err == nil || !objstore.IsTransient(err) {
			t.Fatalf("Get past the client timeout: %v, want a transient error", err)
		}
	})
	t.Run("caller deadline is not transient", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, _, err := objstore.NewCOS(hmacClient(t, slow.URL), bucket, "").Get(ctx, "k")
		if err == nil || objstore.IsTransient(err) {
			t.Fatalf("Get past the caller's deadline: %v, want a non-transient error", err)
		}
	})
}

func TestIsTransient(t *testing.T) {
	base := errors.New("boom")
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{base, false},
		{objstore.MarkTransient(base), true},
		{fmt.Errorf("outer: %w", objstore.MarkTransient(base)), true},
		{objstore.ErrPrecondition, false},
	}
	for _, c := range cases {
		if got := objstore.IsTransient(c.err); got != c.want {
			t.Errorf("IsTransient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if objstore.MarkTransient(nil) != nil {
		t.Error("MarkTransient(nil) != nil")
	}
	if !errors.Is(objstore.MarkTransient(base), base) {
		t.Error("MarkTransient hides the wrapped error")
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := objstore.Options{Endpoint: "https://s3.example", HMACKeyID: "id", HMACSecret: "s"}
	cases := []struct {
		name string
		edit func(*objstore.Options)
		want string // substring of the error; "" means valid
	}{
		{"hmac", func(o *objstore.Options) {}, ""},
		{"api key", func(o *objstore.Options) {
			*o = objstore.Options{Endpoint: "http://x:1", APIKey: "k", InstanceCRN: "crn:v1:x"}
		}, ""},
		{"no endpoint", func(o *objstore.Options) { o.Endpoint = "" }, "endpoint"},
		{"endpoint without scheme", func(o *objstore.Options) { o.Endpoint = "s3.example" }, "endpoint"},
		{"no credentials", func(o *objstore.Options) { o.HMACKeyID, o.HMACSecret = "", "" }, "no credentials"},
		{"half hmac", func(o *objstore.Options) { o.HMACSecret = "" }, "both"},
		{"both kinds", func(o *objstore.Options) { o.APIKey = "k" }, "give one of"},
		{"api key without crn", func(o *objstore.Options) { *o = objstore.Options{Endpoint: "http://x:1", APIKey: "k"} }, "CRN"},
		{"bad token url", func(o *objstore.Options) {
			*o = objstore.Options{Endpoint: "http://x:1", APIKey: "k", InstanceCRN: "c", IAMTokenURL: "iam"}
		}, "token URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := ok
			c.edit(&o)
			err := o.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := objstore.NewCOSClient(o); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, c.want)
			}
			if _, err := objstore.NewCOSClient(o); err == nil {
				t.Fatal("NewCOSClient accepted invalid options")
			}
		})
	}
}

func TestOptionsRedactSecrets(t *testing.T) {
	o := objstore.Options{Endpoint: "https://s3.example", HMACKeyID: "id", HMACSecret: "hmac-SECRET", APIKey: "api-SECRET"}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cos", "options", o)
	for _, s := range []string{fmt.Sprint(o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", o), logged.String()} {
		if strings.Contains(s, "SECRET") {
			t.Errorf("secret printed: %s", s)
		}
		if !strings.Contains(s, "s3.example") {
			t.Errorf("endpoint missing: %s", s)
		}
	}
}

// TestCOSClientAPIKey exchanges an API key at a fake IAM token endpoint and checks that object
// requests carry the bearer token and the instance CRN.
func TestCOSClientAPIKey(t *testing.T) {
	var tokens atomic.Int32
	var mu sync.Mutex
	var auth, crn []string
	endpoint := fakeS3(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/identity/token" {
				tokens.Add(1)
				if err := r.ParseForm(); err != nil || r.Form.Get("apikey") != "the-key" {
					http.Error(w, `{"errorCode":"BXNIM0415E"}`, http.StatusBadRequest)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				exp := time.Now().Add(time.Hour).Unix()
				fmt.Fprintf(w, `{"access_token":"tok-123","refresh_token":"r","token_type":"Bearer","expires_in":3600,"expiration":%d}`, exp)
				return
			}
			mu.Lock()
			auth = append(auth, r.Header.Get("Authorization"))
			crn = append(crn, r.Header.Get("ibm-service-instance-id"))
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	c, err := objstore.NewCOSClient(objstore.Options{Endpoint: endpoint, APIKey: "the-key",
		IAMTokenURL: endpoint + "/identity/token", InstanceCRN: "crn:v1:bluemix:public:cloud-object-storage:global:a/1:2::"})
	if err != nil {
		t.Fatal(err)
	}
	s := objstore.NewCOS(c, bucket, "")
	ctx := context.Background()
	for i := range 3 {
		if _, err := s.Put(ctx, "k", []byte{byte(i)}, objstore.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := tokens.Load(); n != 1 {
		t.Errorf("token endpoint called %d times, want 1 (token cached)", n)
	}
	for i := range auth {
		if !strings.EqualFold(auth[i], "Bearer tok-123") {
			t.Errorf("request %d Authorization %q, want the bearer token", i, auth[i])
		}
		if !strings.HasPrefix(crn[i], "crn:v1:") {
			t.Errorf("request %d ibm-service-instance-id %q, want the instance CRN", i, crn[i])
		}
	}
}

// A trusted profile (no API key): the client takes its IAM tokens from a token source, asks
// again when a token is refused for refresh, and never needs an API key.
func TestCOSClientTokenSource(t *testing.T) {
	var mu sync.Mutex
	var auth []string
	endpoint := fakeS3(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/identity/token" { // a refresh: a trusted profile's token has none
				http.Error(w, `{"errorCode":"BXNIM0407E"}`, http.StatusBadRequest)
				return
			}
			mu.Lock()
			auth = append(auth, r.Header.Get("Authorization"))
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	var calls atomic.Int32
	c, err := objstore.NewCOSClient(objstore.Options{Endpoint: endpoint, IAMTokenURL: endpoint + "/identity/token",
		InstanceCRN: "crn:v1:bluemix:public:cloud-object-storage:global:a/1:2::",
		Token: func() (string, int64, error) {
			calls.Add(1)
			return "profile-tok", time.Now().Add(time.Hour).Unix(), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	s := objstore.NewCOS(c, bucket, "")
	for i := range 3 {
		if _, err := s.Put(context.Background(), "k", []byte{byte(i)}, objstore.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("token source called %d times, want 1 (token cached)", n)
	}
	for i, a := range auth {
		if !strings.EqualFold(a, "Bearer profile-tok") {
			t.Errorf("request %d Authorization %q", i, a)
		}
	}
	if _, err := objstore.NewCOSClient(objstore.Options{Endpoint: endpoint, APIKey: "k", InstanceCRN: "crn",
		Token: func() (string, int64, error) { return "", 0, nil }}); err == nil {
		t.Error("an API key and a token source together were accepted")
	}
}

// TestCOSDeleteManyPerKeyErrors: DeleteObjects answers 200 with an <Error> per key it refused.
// A missing key is not an error; a refused one fails the call naming key and code, marked
// transient when the code is; requests carry at most MaxBatchDelete keys and a Content-MD5.
func TestCOSDeleteManyPerKeyErrors(t *testing.T) {
	cases := []struct {
		name      string
		code      string
		wantErr   bool
		transient bool
	}{
		{"missing key", "NoSuchKey", false, false},
		{"refused", "AccessDenied", true, false},
		{"busy", "InternalError", true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			var sizes []int
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := r.URL.Query()["delete"]; !ok || r.Method != http.MethodPost {
					http.Error(w, "unexpected "+r.Method+" "+r.URL.String(), http.StatusBadRequest)
					return
				}
				if r.Header.Get("Content-MD5") == "" {
					http.Error(w, "no Content-MD5", http.StatusBadRequest)
					return
				}
				var body strings.Builder
				if _, err := io.Copy(&body, r.Body); err != nil {
					t.Error(err)
				}
				mu.Lock()
				sizes = append(sizes, strings.Count(body.String(), "<Object>"))
				first := len(sizes) == 1
				mu.Unlock()
				w.Header().Set("Content-Type", "application/xml")
				out := `<?xml version="1.0" encoding="UTF-8"?><DeleteResult>`
				if first {
					out += `<Error><Key>p/k0007</Key><Code>` + c.code + `</Code><Message>m</Message></Error>`
				}
				fmt.Fprint(w, out+`</DeleteResult>`)
			}))
			defer srv.Close()
			s := objstore.NewCOS(hmacClient(t, srv.URL), bucket, "p")
			var keys []string
			for i := range objstore.MaxBatchDelete + 1 {
				keys = append(keys, fmt.Sprintf("k%04d", i))
			}
			err := objstore.DeleteMany(context.Background(), s, keys)
			if (err != nil) != c.wantErr {
				t.Fatalf("DeleteMany = %v, want error %v", err, c.wantErr)
			}
			if err != nil && (!strings.Contains(err.Error(), "p/k0007") || !strings.Contains(err.Error(), c.code)) {
				t.Errorf("error %q does not name the key and the code", err)
			}
			if got := objstore.IsTransient(err); got != c.transient {
				t.Errorf("IsTransient = %v, want %v (%v)", got, c.transient, err)
			}
			if fmt.Sprint(sizes) != fmt.Sprint([]int{objstore.MaxBatchDelete, 1}) {
				t.Errorf("requests carried %v keys, want [%d 1]", sizes, objstore.MaxBatchDelete)
			}
		})
	}
}
