package cosgate

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Rule selects requests to refuse. Empty fields match anything.
type Rule struct {
	// Method is the HTTP method (PUT, GET, DELETE, HEAD, POST).
	Method string
	// Subresource is a query parameter naming a bucket or object sub-resource (versioning,
	// object-lock, policy, ...); "-" matches only requests without one of Subresources.
	Subresource string
	// KeyPrefix matches object keys (the full key in the bucket, the store's prefix included);
	// "" matches bucket-level requests too.
	KeyPrefix string
}

// Subresources are the query parameters that name a sub-resource rather than an object.
var Subresources = []string{"versioning", "object-lock", "policy", "acl", "lifecycle", "cors", "replication",
	"protection", "retention", "legal-hold", "tagging", "website", "uploads", "uploadId", "delete"}

// Options configure a Gate.
type Options struct {
	// Target is the S3 server's endpoint, e.g. http://127.0.0.1:7070.
	Target string
	// Bucket is the bucket whose HeadBucket carries the Key Protect headers.
	Bucket string
	// RootKeyCRN is the Key Protect root key reported for Bucket ("" reports no encryption).
	RootKeyCRN string
}

// Gate is the proxy.
type Gate struct {
	o     Options
	proxy *httputil.ReverseProxy

	mu    sync.Mutex
	deny  []Rule
	count map[Rule]int
}

// New returns a Gate in front of o.Target.
func New(o Options) (*Gate, error) {
	u, err := url.Parse(o.Target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("cosgate: target %q is not a URL", o.Target)
	}
	g := &Gate{o: o, count: map[Rule]int{}}
	// NewSingleHostReverseProxy keeps the Host header: the signature was made for the gate.
	g.proxy = httputil.NewSingleHostReverseProxy(u)
	g.proxy.ModifyResponse = g.addKeyProtect
	return g, nil
}

// Deny refuses requests matching r from now on; undo removes the rule.
func (g *Gate) Deny(r Rule) (undo func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.deny = append(g.deny, r)
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		for i, x := range g.deny {
			if x == r {
				g.deny = append(g.deny[:i], g.deny[i+1:]...)
				return
			}
		}
	}
}

// DenyBucketConfiguration refuses every write of a bucket's configuration (versioning, Object
// Lock, policy, lifecycle, ...) and the deletion of the bucket: what keyguard's custom Object
// Storage roles leave out, unlike Writer or Manager.
func (g *Gate) DenyBucketConfiguration() {
	for _, sub := range []string{"versioning", "object-lock", "policy", "acl", "lifecycle", "cors", "replication", "protection", "tagging", "website"} {
		g.Deny(Rule{Method: http.MethodPut, Subresource: sub})
		g.Deny(Rule{Method: http.MethodDelete, Subresource: sub})
	}
}

// Refused returns how many requests rule r refused.
func (g *Gate) Refused(r Rule) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.count[r]
}

// ServeHTTP refuses what a rule denies and proxies the rest.
func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if r.Method != http.MethodGet || bucket != "" { // the service root (ListBuckets) is never denied
		if rule, ok := g.denied(r, key); ok {
			g.mu.Lock()
			g.count[rule]++
			g.mu.Unlock()
			accessDenied(w, r)
			return
		}
	}
	g.proxy.ServeHTTP(w, r)
}

func (g *Gate) denied(r *http.Request, key string) (Rule, bool) {
	q := r.URL.Query()
	sub := ""
	for _, s := range Subresources {
		if q.Has(s) {
			sub = s
			break
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, rule := range g.deny {
		switch {
		case rule.Method != "" && rule.Method != r.Method:
		case rule.Subresource == "-" && sub != "":
		case rule.Subresource != "" && rule.Subresource != "-" && rule.Subresource != sub:
		case rule.KeyPrefix != "" && !strings.HasPrefix(key, rule.KeyPrefix):
		default:
			return rule, true
		}
	}
	return Rule{}, false
}

// addKeyProtect adds IBM's Key Protect headers to a successful HeadBucket of the bucket.
func (g *Gate) addKeyProtect(resp *http.Response) error {
	r := resp.Request
	path := strings.Trim(r.URL.Path, "/")
	if r.Method == http.MethodHead && path == g.o.Bucket && resp.StatusCode == http.StatusOK && g.o.RootKeyCRN != "" {
		resp.Header.Set("ibm-sse-kp-enabled", "true")
		resp.Header.Set("ibm-sse-kp-customer-root-key-crn", g.o.RootKeyCRN)
	}
	return nil
}

// accessDenied writes S3's AccessDenied error (no body for HEAD).
func accessDenied(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusForbidden)
	if r.Method == http.MethodHead {
		return
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<Error><Code>AccessDenied</Code><Message>Access Denied</Message><Resource>%s</Resource><RequestId>cosgate</RequestId></Error>`,
		xmlEscape(r.URL.Path))
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// Start serves g on a new loopback listener and returns its URL and a function that stops it.
func Start(g *Gate) (string, func() error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: g}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), srv.Close, nil
}
