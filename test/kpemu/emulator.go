package kpemu

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/test/iamemu"
)

// Routes the emulator serves, as http.ServeMux patterns. Calls takes them.
const (
	RouteKey              = "GET /api/v2/keys/{id}"
	RouteMetadata         = "GET /api/v2/keys/{id}/metadata"
	RouteVersions         = "GET /api/v2/keys/{id}/versions"
	RoutePolicies         = "GET /api/v2/keys/{id}/policies"
	RouteKeyRegistrations = "GET /api/v2/keys/{id}/registrations"
	RouteRegistrations    = "GET /api/v2/keys/registrations"
	RouteRotate           = "POST /api/v2/keys/{id}/actions/rotate"
	RouteDisable          = "POST /api/v2/keys/{id}/actions/disable"
	RouteEnable           = "POST /api/v2/keys/{id}/actions/enable"
	RouteWrap             = "POST /api/v2/keys/{id}/actions/wrap"
	RouteUnwrap           = "POST /api/v2/keys/{id}/actions/unwrap"
	// RouteOtherAction answers every other key action with 400.
	RouteOtherAction = "POST /api/v2/keys/{id}/actions/{action}"
)

// Defaults of Options and of the emulated service.
const (
	DefaultAPIKey  = "kpemu-api-key"
	DefaultRegion  = "us-south"
	DefaultAccount = "0000000000000000000000000000a11c"
	// RotationInterval is how long after a rotation the rotate action is refused.
	RotationInterval = time.Hour
	// DefaultLimit and MaxLimit bound list pages.
	DefaultLimit = 200
	MaxLimit     = 5000
	// MaxWrapPlaintext bounds the key a wrap action takes (Key Protect generates 32 bytes).
	MaxWrapPlaintext = 7168
	// maxActionBody bounds the request body of a key action.
	maxActionBody = 64 << 10
)

// State is a Key Protect key state number.
type State int

// Key Protect key states.
const (
	StatePreActivation State = 0
	StateActive        State = 1
	StateSuspended     State = 2
	StateDeactivated   State = 3
	StateDestroyed     State = 5
)

func (s State) valid() bool { return s >= 0 && s <= 5 && s != 4 }

// Errors returned by the test controls.
var (
	ErrNoKey          = errors.New("kpemu: no such key")
	ErrNoVersion      = errors.New("kpemu: no such key version")
	ErrNoRegistration = errors.New("kpemu: no such registration")
	ErrBadState       = errors.New("kpemu: invalid key state")
)

// Options configure an Emulator. The zero value of every field means its default.
type Options struct {
	// IAM checks bearer tokens and is mounted at /identity/token. When nil, an IAM emulator
	// accepting APIKey (on the wall clock) is created.
	IAM *iamemu.Emulator
	// APIKey is the API key of the IAM emulator created when IAM is nil (DefaultAPIKey).
	APIKey string
	// InstanceID is the Key Protect instance GUID (random when empty).
	InstanceID string
	// Region and Account go into key CRNs (DefaultRegion, DefaultAccount).
	Region, Account string
	// BaseURL is where the emulator is reachable, returned by URL; Start sets it.
	BaseURL string
	// Clock stamps creation and rotation times and judges the hourly rotation limit (wall clock
	// when nil).
	Clock clock.Clock
}

// Emulator is a Key Protect instance. Create it with New or Start.
type Emulator struct {
	iam      *iamemu.Emulator
	apiKey   string
	instance string
	region   string
	account  string
	clock    clock.Clock
	mux      *http.ServeMux

	mu      sync.Mutex
	baseURL string
	keys    map[string]*key
	order   []string // key ids in creation order
	regSeq  int
	fail    []int
	latency time.Duration
	calls   map[string]int
	total   int
}

type version struct {
	id      string
	created time.Time
	// material is the version's AES-256 key: wrap seals with the newest version's, unwrap opens
	// with the version the ciphertext names.
	material []byte
}

// newVersion returns a version with fresh key material.
func newVersion(created time.Time) version {
	m := make([]byte, 32)
	_, _ = rand.Read(m) // crypto/rand.Read never fails on supported platforms
	return version{id: newUUID(), created: created, material: m}
}

type policy struct {
	enabled          bool
	months           int
	created, updated time.Time
}

type registration struct {
	resourceCRN      string
	version          version
	seq              int
	created, updated time.Time
}

type key struct {
	id, name, crn string
	state         State
	created       time.Time
	updated       time.Time
	lastRotate    time.Time // zero until the first rotation
	deletedAt     time.Time
	versions      []version // oldest first
	policy        *policy
	regs          map[string]*registration
}

func (k *key) current() version { return k.versions[len(k.versions)-1] }

// New returns an Emulator configured by o.
func New(o Options) *Emulator {
	if o.APIKey == "" {
		o.APIKey = DefaultAPIKey
	}
	if o.IAM == nil {
		o.IAM = iamemu.New(o.APIKey)
	}
	if o.InstanceID == "" {
		o.InstanceID = newUUID()
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.Account == "" {
		o.Account = DefaultAccount
	}
	e := &Emulator{
		iam:      o.IAM,
		apiKey:   o.APIKey,
		instance: o.InstanceID,
		region:   o.Region,
		account:  o.Account,
		clock:    clock.Or(o.Clock),
		baseURL:  o.BaseURL,
		keys:     map[string]*key{},
		calls:    map[string]int{},
	}
	e.mux = e.routes()
	return e
}

// URL is the base URL of the service (kp.ClientConfig.BaseURL), empty unless started or set.
func (e *Emulator) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.baseURL
}

// TokenURL is the full URL of the IAM token operation (kp.ClientConfig.TokenURL).
func (e *Emulator) TokenURL() string { return e.URL() + iamemu.TokenPath }

// InstanceID is the instance GUID requests must name in bluemix-instance.
func (e *Emulator) InstanceID() string { return e.instance }

// APIKey is the API key the IAM emulator accepts when the emulator created it.
func (e *Emulator) APIKey() string { return e.apiKey }

// IAM is the IAM emulator mounted at /identity/token.
func (e *Emulator) IAM() *iamemu.Emulator { return e.iam }

// CRN returns the CRN a key with id has in this instance.
func (e *Emulator) CRN(id string) string {
	return fmt.Sprintf("crn:v1:bluemix:public:kms:%s:a/%s:%s:key:%s", e.region, e.account, e.instance, id)
}

// AddKey creates an active root key named name, with one version, and returns its id and CRN.
func (e *Emulator) AddKey(name string) (id, crn string) {
	id = newUUID()
	return id, e.AddKeyWithID(id, name)
}

// AddKeyWithID creates an active root key with a chosen id (so a fleet policy's key CRNs can
// name it) and returns its CRN. Adding an id twice keeps the first key.
func (e *Emulator) AddKeyWithID(id, name string) (crn string) {
	now := e.clock.Now().UTC()
	crn = e.CRN(id)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.keys[id]; ok {
		return crn
	}
	e.keys[id] = &key{
		id: id, name: name, crn: crn, state: StateActive, created: now, updated: now,
		versions: []version{newVersion(now)},
		regs:     map[string]*registration{},
	}
	e.order = append(e.order, id)
	return crn
}

// Rotate rotates key id on the server side, as a rotation policy does: a new version becomes
// current and lastRotateDate moves to now. It ignores the hourly limit of the rotate action (but
// counts for it) and returns the new version id.
func (e *Emulator) Rotate(id string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := e.keys[id]
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrNoKey, id)
	}
	return e.rotateLocked(k), nil
}

func (e *Emulator) rotateLocked(k *key) string {
	now := e.clock.Now().UTC()
	v := newVersion(now)
	k.versions = append(k.versions, v)
	k.lastRotate, k.updated = now, now
	return v.id
}

// CurrentVersion returns the id of key id's newest version.
func (e *Emulator) CurrentVersion(id string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := e.keys[id]
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrNoKey, id)
	}
	return k.current().id, nil
}

// AddRegistration registers resourceCRN (e.g. a Db2 instance) with key id at the key's current
// version. Registering an already registered resource changes nothing.
func (e *Emulator) AddRegistration(id, resourceCRN string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := e.keys[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoKey, id)
	}
	if _, ok := k.regs[resourceCRN]; ok {
		return nil
	}
	now := e.clock.Now().UTC()
	e.regSeq++
	k.regs[resourceCRN] = &registration{resourceCRN: resourceCRN, version: k.current(), seq: e.regSeq, created: now, updated: now}
	return nil
}

// RemoveRegistration unregisters resourceCRN from key id, as deleting the resource (or creating
// it without the key) leaves it.
func (e *Emulator) RemoveRegistration(id, resourceCRN string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := e.keys[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoKey, id)
	}
	if _, ok := k.regs[resourceCRN]; !ok {
		return fmt.Errorf("%w: %s on key %s", ErrNoRegistration, resourceCRN, id)
	}
	delete(k.regs, resourceCRN)
	return nil
}

// SetRegistrationVersion records that resourceCRN now uses version of key id, as a resource does
// when it has re-wrapped its data keys after a rotation.
func (e *Emulator) SetRegistrationVersion(id, resourceCRN, versionID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := e.keys[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoKey, id)
	}
	r, ok := k.regs[resourceCRN]
	if !ok {
		return fmt.Errorf("%w: %s on key %s", ErrNoRegistration, resourceCRN, id)
	}
	i := slices.IndexFunc(k.versions, func(v version) bool { return v.id == versionID })
	if i < 0 {
		return fmt.Errorf("%w: %s of key %s", ErrNoVersion, versionID, id)
	}
	r.version = k.versions[i]
	r.updated = e.clock.Now().UTC()
	return nil
}

// SetState puts key id in state s (e.g. StateSuspended for a disabled key, StateDestroyed for
// a deleted one).
func (e *Emulator) SetState(id string, s State) error {
	if !s.valid() {
		return fmt.Errorf("%w: %d", ErrBadState, s)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := e.keys[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoKey, id)
	}
	e.setStateLocked(k, s)
	return nil
}

func (e *Emulator) setStateLocked(k *key, s State) {
	now := e.clock.Now().UTC()
	k.state, k.updated = s, now
	if s == StateDestroyed && k.deletedAt.IsZero() {
		k.deletedAt = now
	}
}

// SetRotationPolicy sets key id's rotation policy.
func (e *Emulator) SetRotationPolicy(id string, enabled bool, intervalMonths int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	k, ok := e.keys[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoKey, id)
	}
	now := e.clock.Now().UTC()
	if k.policy == nil {
		k.policy = &policy{created: now}
	}
	k.policy.enabled, k.policy.months, k.policy.updated = enabled, intervalMonths, now
	return nil
}

// FailNext makes the next n API requests (not token requests: see IAM().FailNext) answer status
// with a Key Protect error body, whatever they ask.
func (e *Emulator) FailNext(n, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for range n {
		e.fail = append(e.fail, status)
	}
}

// SetLatency delays every later API request by d (real time; a request whose client gives up
// is abandoned). Zero removes the delay.
func (e *Emulator) SetLatency(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.latency = d
}

// Calls counts the API requests that matched route (one of the Route* patterns), whatever their
// outcome, injected failures included.
func (e *Emulator) Calls(route string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[route]
}

// Requests counts every API request that matched a route.
func (e *Emulator) Requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total
}

// ResetCalls sets every call counter back to zero.
func (e *Emulator) ResetCalls() {
	e.mu.Lock()
	defer e.mu.Unlock()
	clear(e.calls)
	e.total = 0
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
