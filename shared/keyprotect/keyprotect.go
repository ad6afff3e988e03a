package keyprotect

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	kp "github.com/IBM/keyprotect-go-client"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/retry"
)

// Defaults of Options.
const (
	DefaultTimeout        = 4 * time.Second
	DefaultAttemptTimeout = 2 * time.Second
	DefaultRetries        = 3
	DefaultRetryWait      = 100 * time.Millisecond
	// MaxRetryWait caps the doubling wait between retries.
	MaxRetryWait = time.Second
	// RetryJitter is the largest share of a wait between retries taken away at random, so that
	// instances throttled together do not retry together.
	RetryJitter = 0.5
	// NoRetries, as Options.Retries, makes the first failure final.
	NoRetries = -1
	// PageSize is how many versions or registrations one list request asks for.
	PageSize = 200
	// maxPages bounds a listing (PageSize * maxPages items).
	maxPages = 100
)

// iamTokenPath is what go-sdk-core's IamAuthenticator appends to its base URL.
const iamTokenPath = "/identity/token"

// Options configure a Client. URL, InstanceID and either APIKey or Authenticator are required.
type Options struct {
	// URL is the Key Protect endpoint, e.g. https://us-south.kms.cloud.ibm.com (without /api/v2).
	URL string
	// InstanceID is the Key Protect instance GUID (sent as bluemix-instance).
	InstanceID string
	// APIKey authenticates through IAM when Authenticator is nil.
	APIKey string
	// TokenURL is the full URL of IAM's token operation, ending in /identity/token (default
	// https://iam.cloud.ibm.com/identity/token). A base URL without that path is accepted too.
	TokenURL string
	// Authenticator, when set, authenticates every call instead of APIKey: e.g. a go-sdk-core
	// ContainerAuthenticator for a Code Engine trusted profile. Give it an HTTP client with a
	// timeout; the Client stops waiting for it when a call's budget ends.
	Authenticator core.Authenticator
	// HTTPClient's Transport carries the requests (to Key Protect, and to IAM for APIKey); nil
	// means http.DefaultTransport. Its Timeout is ignored: AttemptTimeout bounds each attempt.
	HTTPClient *http.Client
	// Timeout bounds each method call, retries and token fetch included (default 4 s).
	Timeout time.Duration
	// AttemptTimeout bounds one HTTP attempt (default 2 s).
	AttemptTimeout time.Duration
	// Retries is how many times a transient failure is retried within Timeout (default 3;
	// NoRetries for none).
	Retries int
	// RetryWait is the first wait between attempts, doubled each time up to MaxRetryWait, each
	// wait shortened at random by up to RetryJitter of it (default 100 ms).
	RetryWait time.Duration
	// Clock times the waits between attempts and, from the call's start, what is left of the
	// budget for them (wall clock when nil). The budget's end is wall time: with a fake clock
	// that is not advanced, a retry wait ends when the budget does.
	Clock clock.Clock
	// Logger gets a debug line per retried attempt (slog.Default when nil).
	Logger *slog.Logger
}

// Client reads and rotates the keys of one Key Protect instance.
type Client struct {
	kp         *kp.Client
	auth       core.Authenticator
	authURL    string
	instanceID string
	timeout    time.Duration
	retry      retry.Policy
	log        *slog.Logger
}

// KeyInfo is a key's metadata (GetKeyMetadata).
type KeyInfo struct {
	ID   string
	CRN  string
	Name string
	// State is the key state by name; StateCode is Key Protect's number for it.
	State     events.KeyState
	StateCode int
	Created   time.Time
	// LastRotateDate is zero when the key was never rotated.
	LastRotateDate time.Time
	// Version is the id of the key's newest version (keyVersion.id), the one new wraps use.
	Version        string
	VersionCreated time.Time
}

// Version is one version of a root key.
type Version struct {
	ID        string
	CreatedAt time.Time
}

// Policy is a key's rotation policy. The zero value means no policy.
type Policy struct {
	Enabled        bool
	IntervalMonths int
}

// Registration is a cloud resource (e.g. a Db2 instance) registered as protected by a key.
type Registration struct {
	KeyID       string
	ResourceCRN string
	// KeyVersion is the key version that protects the resource now: it moves to the key's newest
	// version once the resource has re-wrapped after a rotation.
	KeyVersion         string
	KeyVersionCreated  time.Time
	PreventKeyDeletion bool
	Created            time.Time
	Updated            time.Time
}

var disableSDKRetries = sync.OnceFunc(func() { kp.RetryMax = 0 })

// New validates o and returns a Client. It contacts neither Key Protect nor IAM.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if o.URL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("keyprotect: URL %q is not an http(s) URL", o.URL)
	}
	if !ValidID(o.InstanceID) {
		return nil, fmt.Errorf("keyprotect: invalid instance id %q", o.InstanceID)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.RetryWait <= 0 {
		o.RetryWait = DefaultRetryWait
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var transport http.RoundTripper = http.DefaultTransport
	if o.HTTPClient != nil && o.HTTPClient.Transport != nil {
		transport = o.HTTPClient.Transport
	}

	auth := o.Authenticator
	if core.IsNil(auth) {
		if o.APIKey == "" {
			return nil, fmt.Errorf("keyprotect: APIKey or Authenticator is required")
		}
		b := core.NewIamAuthenticatorBuilder().SetApiKey(o.APIKey).
			SetClient(&http.Client{Transport: transport, Timeout: o.AttemptTimeout})
		if o.TokenURL != "" {
			b = b.SetURL(strings.TrimSuffix(strings.TrimSuffix(o.TokenURL, "/"), iamTokenPath))
		}
		a, err := b.Build()
		if err != nil {
			return nil, fmt.Errorf("keyprotect: iam authenticator: %w", err)
		}
		auth = a
	}

	disableSDKRetries()
	log := o.Logger.With("component", "keyprotect")
	base := strings.TrimSuffix(o.URL, "/")
	client, err := kp.NewWithLogger(kp.ClientConfig{
		BaseURL:    base,
		InstanceID: o.InstanceID,
		Timeout:    o.AttemptTimeout.Seconds(),
		Verbose:    kp.VerboseNone,
	}, pagingTransport{next: hintTransport{next: transport}}, kp.NewLogger(func(args ...any) {
		log.Debug("keyprotect-go-client", "message", fmt.Sprint(args...))
	}))
	if err != nil {
		return nil, fmt.Errorf("keyprotect: client: %w", err)
	}
	return &Client{
		kp:         client,
		auth:       auth,
		authURL:    base + "/api/v2/",
		instanceID: o.InstanceID,
		timeout:    o.Timeout,
		retry: retry.Policy{Attempts: o.Retries + 1, FirstWait: o.RetryWait, MaxWait: MaxRetryWait,
			Jitter: RetryJitter, Clock: o.Clock},
		log: log,
	}, nil
}

// InstanceID is the instance the client talks to.
func (c *Client) InstanceID() string { return c.instanceID }

// keyID resolves a key reference (an id or a key CRN of this instance).
func (c *Client) keyID(op, ref string) (string, error) {
	if strings.HasPrefix(ref, "crn:") {
		inst, id, err := KeyIDFromCRN(ref)
		if err != nil {
			return "", &Error{Op: op, Class: Invalid, Err: err}
		}
		if inst != c.instanceID {
			return "", &Error{Op: op, KeyID: id, Class: Configuration,
				Err: fmt.Errorf("key CRN names instance %s, the client serves %s", inst, c.instanceID)}
		}
		return id, nil
	}
	if !ValidID(ref) {
		return "", &Error{Op: op, Class: Invalid, Err: fmt.Errorf("invalid key id %q", ref)}
	}
	return ref, nil
}

// Key returns the metadata of the key ref (an id or a CRN): state, last rotation and newest
// version. A key Key Protect answers 410 Gone for is reported as destroyed (only ID and State
// set) rather than as an error.
func (c *Client) Key(ctx context.Context, ref string) (KeyInfo, error) {
	const op = "get key metadata"
	id, err := c.keyID(op, ref)
	if err != nil {
		return KeyInfo{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var k *kp.Key
	err = c.call(ctx, op, id, func(ctx context.Context) error {
		var err error
		k, err = c.kp.GetKeyMetadata(ctx, id)
		return err
	})
	if e := (*Error)(nil); errors.As(err, &e) && (e.StatusCode == http.StatusGone || e.Reason == ReasonKeyDeleted) {
		return KeyInfo{ID: id, State: events.KeyDestroyed, StateCode: 5}, nil
	}
	if err != nil {
		return KeyInfo{}, err
	}
	if k == nil {
		return KeyInfo{}, &Error{Op: op, KeyID: id, Class: Permanent, Err: fmt.Errorf("empty answer")}
	}
	state, ok := StateFromCode(k.State)
	if !ok {
		return KeyInfo{}, &Error{Op: op, KeyID: id, Class: Permanent, Err: fmt.Errorf("unknown key state %d", k.State)}
	}
	info := KeyInfo{
		ID: cmp.Or(k.ID, id), CRN: k.CRN, Name: k.Name, State: state, StateCode: k.State,
		Created: deref(k.CreationDate), LastRotateDate: deref(k.LastRotateDate),
	}
	if k.KeyVersion != nil {
		info.Version, info.VersionCreated = k.KeyVersion.ID, deref(k.KeyVersion.CreationDate)
	}
	return info, nil
}

// Versions returns every version of the key ref, newest first.
func (c *Client) Versions(ctx context.Context, ref string) ([]Version, error) {
	const op = "list key versions"
	id, err := c.keyID(op, ref)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var out []Version
	for pageNo := range maxPages {
		limit, offset := uint32(PageSize), uint32(pageNo*PageSize)
		var got []kp.KeyVersion
		err := c.call(ctx, op, id, func(ctx context.Context) error {
			vs, err := c.kp.ListKeyVersions(ctx, id, &kp.ListKeyVersionsOptions{Limit: &limit, Offset: &offset})
			if vs != nil {
				got = vs.KeyVersion
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, v := range got {
			out = append(out, Version{ID: v.ID, CreatedAt: deref(v.CreationDate)})
		}
		if len(got) < PageSize {
			// Newest first whatever order the service used (ties keep its order).
			slices.SortStableFunc(out, func(a, b Version) int { return b.CreatedAt.Compare(a.CreatedAt) })
			return out, nil
		}
	}
	return nil, &Error{Op: op, KeyID: id, Class: Permanent, Err: fmt.Errorf("more than %d versions", PageSize*maxPages)}
}

// RotationPolicy returns the rotation policy of the key ref; the zero Policy when it has none.
func (c *Client) RotationPolicy(ctx context.Context, ref string) (Policy, error) {
	const op = "get rotation policy"
	id, err := c.keyID(op, ref)
	if err != nil {
		return Policy{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var p *kp.Policy
	err = c.call(ctx, op, id, func(ctx context.Context) error {
		var err error
		p, err = c.kp.GetRotationPolicy(ctx, id)
		return err
	})
	if err != nil || p == nil || p.Rotation == nil {
		return Policy{}, err
	}
	enabled := p.Rotation.Interval > 0 // policies older than the enabled flag are enabled
	if p.Rotation.Enabled != nil {
		enabled = *p.Rotation.Enabled
	}
	return Policy{Enabled: enabled, IntervalMonths: p.Rotation.Interval}, nil
}

// Registrations returns every resource registered with the key ref and the key version each uses
// now, in the service's order, following pages.
func (c *Client) Registrations(ctx context.Context, ref string) ([]Registration, error) {
	const op = "list registrations"
	id, err := c.keyID(op, ref)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var out []Registration
	for pageNo := range maxPages {
		var got []kp.Registration
		err := c.call(ctx, op, id, func(ctx context.Context) error {
			// keyprotect-go-client v0.17.3 has no paging options for ListRegistrations:
			// pagingTransport adds limit and offset to the request.
			regs, err := c.kp.ListRegistrations(withPage(ctx, PageSize, pageNo*PageSize), id, "")
			if regs != nil {
				got = regs.Registrations
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range got {
			out = append(out, Registration{
				KeyID: cmp.Or(r.KeyID, id), ResourceCRN: r.ResourceCrn,
				KeyVersion: r.KeyVersion.ID, KeyVersionCreated: deref(r.KeyVersion.CreationDate),
				PreventKeyDeletion: r.PreventKeyDeletion,
				Created:            deref(r.CreationDate), Updated: deref(r.LastUpdateDate),
			})
		}
		if len(got) < PageSize {
			return out, nil
		}
	}
	return nil, &Error{Op: op, KeyID: id, Class: Permanent, Err: fmt.Errorf("more than %d registrations", PageSize*maxPages)}
}

// Rotate asks Key Protect to rotate the key ref now (a new version becomes current). Key Protect
// allows one rotation per key per hour: a second one is refused with an error for which
// IsRotationTooSoon is true. Not idempotent: a retry after a transient failure may meet that
// refusal although the key was rotated; Key's LastRotateDate tells.
func (c *Client) Rotate(ctx context.Context, ref string) error {
	return c.action(ctx, "rotate key", ref, func(ctx context.Context, id string) error { return c.kp.Rotate(ctx, id, "") })
}

// Disable suspends the key ref (state suspended: it can no longer wrap or unwrap). Disabling a
// key that is not active fails with a permanent 409 error.
func (c *Client) Disable(ctx context.Context, ref string) error {
	return c.action(ctx, "disable key", ref, c.kp.DisableKey)
}

// Enable makes the suspended key ref active again. Enabling a key that is not suspended fails
// with a permanent 409 error.
func (c *Client) Enable(ctx context.Context, ref string) error {
	return c.action(ctx, "enable key", ref, c.kp.EnableKey)
}

func (c *Client) action(ctx context.Context, op, ref string, f func(context.Context, string) error) error {
	id, err := c.keyID(op, ref)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.call(ctx, op, id, func(ctx context.Context) error { return f(ctx, id) })
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
