package db2saasemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/test/iamemu"
)

// Routes the emulator serves.
const (
	ContextRoot  = "/dbapi/v4"
	RouteBackups = ContextRoot + "/manage/backups"
	RouteCreate  = ContextRoot + "/manage/backups/backup"
)

// Backup types the emulator reports.
const (
	TypeOnDemand  = "on_demand"
	TypeScheduled = "scheduled"
)

// Backup statuses the emulator reports.
const (
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// Defaults of Options.
const (
	DefaultDuration = 10 * time.Minute
	DefaultSize     = int64(4_000_000_000)
)

const timeFormat = "2006-01-02T15:04:05.000Z"

// Options configure an Emulator.
type Options struct {
	// APIKey is the API key the mounted IAM emulator accepts (when IAM is nil).
	APIKey string
	// IAM, when set, is the token issuer to trust and mount instead of a new one.
	IAM *iamemu.Emulator
	// Clock times backups (wall clock when nil).
	Clock clock.Clock
	// Duration is how long a created backup runs (default 10 minutes).
	Duration time.Duration
	// Size is the size a completed created backup reports (default 4 000 000 000 bytes).
	Size int64
	// Instances lists the known instance CRNs; empty means every CRN is known.
	Instances []string
	// Logger gets a debug line per request (discarded when nil).
	Logger *slog.Logger
}

// Seed describes a backup to add with AddBackup.
type Seed struct {
	Type      string // default on_demand
	CreatedAt time.Time
	Duration  time.Duration
	Size      int64
	Fail      bool
}

// Backup is a stored backup as the emulator would list it now.
type Backup struct {
	ID        string
	Type      string
	Status    string
	CreatedAt time.Time
	Size      int64
	Duration  time.Duration
}

// Request is one API request as it arrived.
type Request struct {
	Method  string
	Path    string
	Profile string // raw x-db-profile header
	Status  int    // what the emulator answered
}

type backup struct {
	id       string
	typ      string
	created  time.Time
	duration time.Duration
	size     int64
	fail     bool
}

// Emulator is the fake Db2 on Cloud backup API. The zero value is not usable; call New.
type Emulator struct {
	iam   *iamemu.Emulator
	clock clock.Clock
	log   *slog.Logger

	mu        sync.Mutex
	url       string
	duration  time.Duration
	size      int64
	restrict  bool
	instances map[string][]*backup // newest last
	failNext  []int
	failBak   int
	requests  []Request
}

// New returns an Emulator configured by o.
func New(o Options) *Emulator {
	if o.IAM == nil {
		o.IAM = iamemu.New(o.APIKey)
	}
	if o.Duration <= 0 {
		o.Duration = DefaultDuration
	}
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Emulator{iam: o.IAM, clock: clock.Or(o.Clock), log: o.Logger.With("component", "db2saasemu"),
		duration: o.Duration, size: o.Size, restrict: len(o.Instances) > 0, instances: map[string][]*backup{}}
	for _, crn := range o.Instances {
		e.instances[crn] = nil
	}
	return e
}

// IAM returns the token issuer the emulator trusts (mounted at iamemu.TokenPath).
func (e *Emulator) IAM() *iamemu.Emulator { return e.iam }

// URL is the server's root URL when started with Start (the IAM URL for go-sdk-core).
func (e *Emulator) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.url
}

// ServiceURL is URL plus the context root: the service URL for the client.
func (e *Emulator) ServiceURL() string { return e.URL() + ContextRoot }

// AddInstance makes crn a known instance.
func (e *Emulator) AddInstance(crn string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.instances[crn]; !ok {
		e.instances[crn] = nil
	}
}

// AddBackup stores a backup for the instance (made known) and returns its id.
func (e *Emulator) AddBackup(crn string, s Seed) string {
	if s.Type == "" {
		s.Type = TypeOnDemand
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = e.clock.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	b := &backup{id: stem(crn) + ":backup:" + newID(), typ: s.Type, created: s.CreatedAt.UTC().Truncate(time.Millisecond),
		duration: s.Duration, size: s.Size, fail: s.Fail}
	e.instances[crn] = append(e.instances[crn], b)
	return b.id
}

// FailNextBackup makes the next created backup end "failed".
func (e *Emulator) FailNextBackup() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failBak++
}

// FailNext makes the next n API requests answer status (a 429 carries Retry-After: 1).
func (e *Emulator) FailNext(n, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for range n {
		e.failNext = append(e.failNext, status)
	}
}

// SetDuration changes how long backups created from now on run.
func (e *Emulator) SetDuration(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.duration = d
}

// Backups returns the instance's backups as they would be listed now, newest first.
func (e *Emulator) Backups(crn string) []Backup {
	now := e.clock.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	list := e.instances[crn]
	out := make([]Backup, 0, len(list))
	for i := len(list) - 1; i >= 0; i-- {
		out = append(out, view(list[i], now))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out
}

// Requests returns the API requests received so far (token requests excluded).
func (e *Emulator) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Request(nil), e.requests...)
}

func view(b *backup, now time.Time) Backup {
	v := Backup{ID: b.id, Type: b.typ, CreatedAt: b.created}
	switch end := b.created.Add(b.duration); {
	case now.Before(end):
		v.Status, v.Duration = StatusRunning, now.Sub(b.created).Truncate(time.Second)
		if v.Duration < 0 {
			v.Duration = 0
		}
	case b.fail:
		v.Status, v.Duration = StatusFailed, b.duration
	default:
		v.Status, v.Duration, v.Size = StatusCompleted, b.duration, b.size
	}
	return v
}

// ServeHTTP serves the IAM token endpoint and the two backup operations.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == iamemu.TokenPath {
		e.iam.ServeHTTP(w, r)
		return
	}
	rec := &Request{Method: r.Method, Path: r.URL.Path, Profile: r.Header.Get("x-db-profile")}
	status := e.serve(w, r, rec)
	rec.Status = status
	e.mu.Lock()
	e.requests = append(e.requests, *rec)
	e.mu.Unlock()
	e.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status)
}

func (e *Emulator) serve(w http.ResponseWriter, r *http.Request, rec *Request) int {
	var want string
	switch r.URL.Path {
	case RouteBackups:
		want = http.MethodGet
	case RouteCreate:
		want = http.MethodPost
	default:
		return apiError(w, http.StatusNotFound, "not_found", "no such operation: "+r.URL.Path)
	}
	if r.Method != want {
		w.Header().Set("Allow", want)
		return apiError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
	}
	e.mu.Lock()
	var forced int
	if len(e.failNext) > 0 {
		forced, e.failNext = e.failNext[0], e.failNext[1:]
	}
	e.mu.Unlock()
	if forced != 0 {
		if forced == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		return apiError(w, forced, "injected_failure", "injected failure "+strconv.Itoa(forced))
	}
	if !e.iam.Valid(r.Header.Get("Authorization")) {
		return apiError(w, http.StatusUnauthorized, "unauthorized", "a valid IAM bearer token is required")
	}
	crn, status, msg := e.instance(rec.Profile)
	if status != 0 {
		return apiError(w, status, "invalid_profile", msg)
	}
	if r.Method == http.MethodGet {
		return e.list(w, crn)
	}
	return e.create(w, crn)
}

// instance decodes and checks the x-db-profile header.
func (e *Emulator) instance(profile string) (string, int, string) {
	if profile == "" {
		return "", http.StatusBadRequest, "the x-db-profile header is required"
	}
	if strings.ContainsAny(profile, ":/") {
		return "", http.StatusBadRequest, "x-db-profile must be the URL-encoded instance CRN"
	}
	crn, err := url.QueryUnescape(profile)
	if err != nil || !strings.HasPrefix(crn, "crn:") {
		return "", http.StatusBadRequest, "x-db-profile does not decode to a CRN"
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.instances[crn]; !ok {
		if e.restrict {
			return "", http.StatusNotFound, "no Db2 instance " + crn
		}
		e.instances[crn] = nil
	}
	return crn, 0, ""
}

type wireBackup struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
	Size      int64  `json:"size"`
	Duration  int64  `json:"duration"`
}

func (e *Emulator) list(w http.ResponseWriter, crn string) int {
	out := struct {
		Backups []wireBackup `json:"backups"`
	}{Backups: []wireBackup{}}
	for _, b := range e.Backups(crn) {
		out.Backups = append(out.Backups, wireBackup{ID: b.ID, Type: b.Type, Status: b.Status,
			CreatedAt: b.CreatedAt.UTC().Format(timeFormat), Size: b.Size, Duration: int64(b.Duration / time.Second)})
	}
	return writeJSON(w, http.StatusOK, out)
}

func (e *Emulator) create(w http.ResponseWriter, crn string) int {
	now := e.clock.Now()
	e.mu.Lock()
	for _, b := range e.instances[crn] {
		if view(b, now).Status == StatusRunning {
			e.mu.Unlock()
			return apiError(w, http.StatusConflict, "backup_in_progress", "a backup of this instance is already in progress: "+b.id)
		}
	}
	b := &backup{id: stem(crn) + ":backup:" + newID(), typ: TypeOnDemand, created: now.UTC().Truncate(time.Millisecond),
		duration: e.duration, size: e.size}
	if e.failBak > 0 {
		e.failBak--
		b.fail = true
	}
	e.instances[crn] = append(e.instances[crn], b)
	e.mu.Unlock()
	return writeJSON(w, http.StatusOK, map[string]any{"task": map[string]string{"id": stem(crn) + ":task:" + newID()}})
}

// stem is the instance CRN without its empty trailing segments, the base of the ids it minted.
func stem(crn string) string { return strings.TrimRight(crn, ":") }

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func apiError(w http.ResponseWriter, status int, code, msg string) int {
	trace := newID()
	return writeJSON(w, status, map[string]any{
		"errors":      []map[string]string{{"code": code, "message": msg}},
		"trace":       trace,
		"status_code": status,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		_, _ = fmt.Fprintln(w)
	}
	return status
}
