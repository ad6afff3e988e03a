package enemu

import (
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/test/iamemu"
)

// Defaults of the delivery behaviour, from EN's documented best effort.
const (
	DefaultAttemptTimeout = 10 * time.Second
	DefaultRetries        = 3
	DefaultRetryWait      = 10 * time.Second / DefaultRetries
	DefaultMaxConcurrent  = 64
	// NoRetries, as Options.Retries, makes the first failed attempt final.
	NoRetries = -1
	// MaxBodyBytes is the largest notification the emulator accepts (413 above).
	MaxBodyBytes = 1 << 20
)

// Paths the emulator serves.
const (
	NotificationsPath = "/v1/instances/{instance_id}/notifications"
	PublishPath       = "/_emulator/publish"
	NotificationsLog  = "/_emulator/notifications"
	DeliveriesLog     = "/_emulator/deliveries"
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("event notifications emulator closed")

// Options configure an Emulator. The zero value of every field means its default.
type Options struct {
	// IAM checks bearer tokens and is mounted at /identity/token. When nil, an IAM emulator
	// accepting APIKey is created.
	IAM *iamemu.Emulator
	// APIKey is the API key of the IAM emulator created when IAM is nil.
	APIKey string
	// InstanceID, when set, is the only instance the API answers for (404 for others).
	InstanceID string
	// HTTPClient delivers notifications. Nil means a client with no overall timeout; each
	// attempt is bounded by AttemptTimeout either way.
	HTTPClient *http.Client
	// AttemptTimeout bounds one delivery attempt (default 10 s).
	AttemptTimeout time.Duration
	// Retries is how many times a failed delivery is retried (default 3; NoRetries for none).
	Retries int
	// RetryWait is the wait before each retry (default 10 s / 3). Tests use a few milliseconds.
	RetryWait time.Duration
	// MaxConcurrent bounds delivery attempts in flight (default 64).
	MaxConcurrent int
	// Clock times retry waits and stamps records (wall clock when nil). With a fake clock a
	// retry happens only when the clock is advanced past its wait.
	Clock clock.Clock
	// Logger receives one line per delivery outcome, lost ones at Warn, delivered at Debug
	// (slog.Default when nil). Header values are never logged.
	Logger *slog.Logger
	// DropRate and DuplicateRate are probabilities in [0, 1] that a delivery is lost without any
	// attempt, or made twice. Seed seeds them (runs with the same seed decide alike).
	DropRate, DuplicateRate float64
	Seed                    uint64
	// Fault, when set, decides the fate of every delivery not already decided by DropNext or
	// DuplicateNext; returning Deliver falls through to the rates. It runs with the emulator
	// locked, so it must not call the Emulator.
	Fault func(Notification, Subscription) Fault
}

// Emulator is an Event Notifications instance. Build it with New; it is an http.Handler.
type Emulator struct {
	iam            *iamemu.Emulator
	instanceID     string
	client         *http.Client
	attemptTimeout time.Duration
	retries        int
	retryWait      time.Duration
	clock          clock.Clock
	log            *slog.Logger
	mux            *http.ServeMux
	sem            chan struct{}
	ctx            context.Context
	cancel         context.CancelFunc

	mu            sync.Mutex
	closed        bool
	url           string
	notifications []Notification
	deliveries    []*Delivery
	subs          []Subscription
	sources       []Source
	topics        []*topic
	dropNext      int
	dupNext       int
	dropRate      float64
	dupRate       float64
	rng           *mrand.Rand
	fault         func(Notification, Subscription) Fault
	inflight      int
	idle          chan struct{} // closed while inflight == 0
}

// New returns an Emulator configured by o. Call Close when done to stop deliveries.
func New(o Options) *Emulator {
	if o.IAM == nil {
		o.IAM = iamemu.New(o.APIKey)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
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
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Emulator{
		iam:            o.IAM,
		instanceID:     o.InstanceID,
		client:         o.HTTPClient,
		attemptTimeout: o.AttemptTimeout,
		retries:        o.Retries,
		retryWait:      o.RetryWait,
		clock:          clock.Or(o.Clock),
		log:            o.Logger.With("component", "enemu"),
		sem:            make(chan struct{}, o.MaxConcurrent),
		ctx:            ctx,
		cancel:         cancel,
		dropRate:       o.DropRate,
		dupRate:        o.DuplicateRate,
		rng:            mrand.New(mrand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		fault:          o.Fault,
		idle:           make(chan struct{}),
	}
	close(e.idle)
	mux := http.NewServeMux()
	mux.Handle("POST "+iamemu.TokenPath, e.iam)
	mux.Handle("GET "+iamemu.PoliciesPath, e.iam)
	mux.HandleFunc("POST "+NotificationsPath, e.handleSend)
	mux.HandleFunc("POST "+PublishPath, e.handlePublish)
	e.adminRoutes(mux)
	mux.HandleFunc("GET "+NotificationsLog, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, e.Notifications())
	})
	mux.HandleFunc("GET "+DeliveriesLog, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, e.Deliveries())
	})
	e.mux = mux
	return e
}

// ServeHTTP serves the EN API, the IAM token endpoint and the emulator's own routes.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

// IAM returns the IAM emulator that issues and checks this emulator's tokens.
func (e *Emulator) IAM() *iamemu.Emulator { return e.iam }

// URL is the base URL when the emulator was started by Start, else "".
func (e *Emulator) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.url
}

// Close stops accepting notifications, abandons deliveries in flight (recorded as lost) and
// waits for them to end. It is idempotent.
func (e *Emulator) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	_ = e.WaitIdle(context.Background())
}

// WaitIdle blocks until no delivery is pending (attempt running or retry waiting) or ctx ends.
func (e *Emulator) WaitIdle(ctx context.Context) error {
	for {
		e.mu.Lock()
		if e.inflight == 0 {
			e.mu.Unlock()
			return nil
		}
		ch := e.idle
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for deliveries: %w", ctx.Err())
		}
	}
}

// Notifications returns every accepted notification, in acceptance order.
func (e *Emulator) Notifications() []Notification {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Notification(nil), e.notifications...)
}

// NotificationsOfType returns the accepted notifications of type typ, in acceptance order.
func (e *Emulator) NotificationsOfType(typ string) []Notification {
	var out []Notification
	for _, n := range e.Notifications() {
		if n.Type == typ {
			out = append(out, n)
		}
	}
	return out
}

// Publish accepts n as if another EN source had sent it (periodic timer, Cloud Logs alert) and
// delivers it like any other. Empty SpecVersion defaults to "1.0", zero Time to now, and
// DataContentType to application/json when Data is set. It returns the notification id.
func (e *Emulator) Publish(n Notification) (string, error) {
	if n.SpecVersion == "" {
		n.SpecVersion = SpecVersion
	}
	if n.Time.IsZero() {
		n.Time = e.clock.Now()
	}
	if len(n.Data) > 0 && n.DataContentType == "" {
		n.DataContentType = "application/json"
	}
	if err := n.Validate(); err != nil {
		return "", fmt.Errorf("publish: %w", err)
	}
	return e.accept(n)
}

func (e *Emulator) handleSend(w http.ResponseWriter, r *http.Request) {
	if !e.iam.Valid(r.Header.Get("Authorization")) {
		apiError(w, http.StatusUnauthorized, "unauthorized", "a valid IAM bearer token is required")
		return
	}
	if e.instanceID != "" && r.PathValue("instance_id") != e.instanceID {
		apiError(w, http.StatusNotFound, "not_found", "instance not found")
		return
	}
	n, status, err := decode(w, r)
	if err != nil {
		apiError(w, status, "bad_request", err.Error())
		return
	}
	if err := n.Validate(); err != nil {
		apiError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	e.respondAccept(w, n)
}

func (e *Emulator) handlePublish(w http.ResponseWriter, r *http.Request) {
	n, status, err := decode(w, r)
	if err != nil {
		apiError(w, status, "bad_request", err.Error())
		return
	}
	id, err := e.Publish(n)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, ErrClosed) {
			code = http.StatusServiceUnavailable
		}
		apiError(w, code, "bad_request", err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"notification_id": id})
}

func (e *Emulator) respondAccept(w http.ResponseWriter, n Notification) {
	id, err := e.accept(n)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"notification_id": id})
}

// decode reads one notification from a JSON (optionally gzip-encoded) request body.
func decode(w http.ResponseWriter, r *http.Request) (Notification, int, error) {
	var n Notification
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return n, http.StatusUnsupportedMediaType, errors.New("content type must be application/json")
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			return n, http.StatusBadRequest, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		body = io.LimitReader(zr, MaxBodyBytes+1)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return n, http.StatusRequestEntityTooLarge, errors.New("notification too large")
		}
		return n, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	if len(raw) > MaxBodyBytes {
		return n, http.StatusRequestEntityTooLarge, errors.New("notification too large")
	}
	if err := json.Unmarshal(raw, &n); err != nil {
		return n, http.StatusBadRequest, fmt.Errorf("body is not a notification: %w", err)
	}
	return n, 0, nil
}

// apiError writes the IBM Cloud API error shape go-sdk-core understands.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{
		"errors":      []map[string]string{{"code": code, "message": msg, "more_info": ""}},
		"status_code": status,
		"trace":       newID(),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newID returns a random UUID (version 4).
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
