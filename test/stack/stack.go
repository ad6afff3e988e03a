package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/notify"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/runtime"
	"github.com/keyguard-dev/keyguard/shared/scheduler"
	"github.com/keyguard-dev/keyguard/shared/secret"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/test/ceemu"
	"github.com/keyguard-dev/keyguard/test/cosgate"
	"github.com/keyguard-dev/keyguard/test/db2saasemu"
	"github.com/keyguard-dev/keyguard/test/enemu"
	"github.com/keyguard-dev/keyguard/test/kpemu"
	"github.com/keyguard-dev/keyguard/test/s3server"
	"github.com/keyguard-dev/keyguard/test/simdb2"
)

// Options configure a Stack.
type Options struct {
	// Versitygw is the versitygw binary (required).
	Versitygw string
	// Fleet is the policy; the dev fleet (fleet.dev.yaml, DevFleet) when nil.
	Fleet *config.Fleet
	// Start is the simulated time the stack starts at.
	Start time.Time
	// Fail makes chosen simulated runs fail; Durations overrides run lengths.
	Fail      []simdb2.FailRule
	Durations map[events.BackupType]time.Duration
	// Logger gets the components' logs; discarded when nil.
	Logger *slog.Logger
	// Rewrap is how long the simulated Db2 takes to re-wrap its keys after a rotation; nil means
	// it never reports the new version (windows then close at their maximum).
	Rewrap func(db config.Database) time.Duration
	// FleetYAML is the policy's text, for a runner process (Db2CLI.RunnerBin): the deployed
	// runner loads it as a deployment does, so it must name no simulated database.
	FleetYAML []byte
	// FleetInBucket stores FleetYAML at FleetKey in the bucket when the stack starts, and has
	// the functions (and the in-process runner) read the policy from there as deployed
	// functions do, re-reading it within FleetTTL, so that `keyguard fleet push` changes what
	// the stack does. Fleet must be FleetYAML loaded; the emulators are set up from it.
	FleetInBucket bool
	// Db2CLI runs the fleet's db2cli databases against a fake Db2 command line.
	Db2CLI *Db2CLI
	// ENFault, when set, decides the fate of each Event Notifications delivery (enemu.Options.Fault).
	ENFault func(enemu.Notification, enemu.Subscription) enemu.Fault
	// WrapObjects, when set, wraps the functions' object store (to count or slow its calls).
	WrapObjects func(objstore.Store) objstore.Store
}

// Db2CLI says how the stack backs up db2cli databases: with the real runner against the fake
// db2 and db2ckbkp in FakeBin, whose state file is StateFile. With RunnerBin set, each backup is a
// child process of that runner binary (as a Code Engine job run is a container); otherwise the
// runner runs in this process on the stack's clock.
type Db2CLI struct {
	FakeBin, StateFile, RunnerBin string
}

// Stack is a running local keyguard.
type Stack struct {
	Clock   *clock.Fake
	Fleet   *config.Fleet
	EN      *enemu.Emulator
	S3      *s3server.Server
	Objects objstore.Store
	States  state.Store
	// Ops publishes events as an outside party would (the key watcher, an operator).
	Ops *notify.Client
	// URLs of the functions, by name.
	URLs  map[string]string
	Token secret.Secret
	Sim   *simdb2.Simulated
	// SaaS is the Db2 on Cloud emulator the fleet's db2saas databases are backed up on.
	SaaS *db2saasemu.Emulator
	// KP is the Key Protect emulator holding the fleet's keys; Keys is the real client on it.
	KP   *kpemu.Emulator
	Keys *keyprotect.Client
	// Gate (COS's Key Protect headers and IAM refusals in front of the S3 server) and CE (the
	// Code Engine project holding the runner job) exist once EnablePreflight has run.
	Gate *cosgate.Gate
	CE   *ceemu.Emulator

	fleet  config.Source // what the functions read: Fleet, or the policy object in the bucket
	rewrap func(db config.Database) time.Duration
	apiKey string
	enURL  string
	mu     sync.Mutex
	busy   map[string]bool // databases re-wrapping their keys (simulated Db2)

	// kpURL and saasURL are the Key Protect and Db2 on Cloud emulators' base URLs; pf is the
	// preflight's wiring (preflight.go).
	kpURL   string
	saasURL string
	pf      *preflightWiring

	tickN   int
	closers []func() error
	waiters []interface{ Wait(context.Context) error }
}

const (
	enInstance = "keyguard-local"
	enSourceID = "keyguard-local-source"
)

// FleetKey is where a FleetInBucket stack keeps its policy (the deployment's default), and
// FleetTTL how soon its functions see a new one.
const (
	FleetKey = "config/fleet.yaml"
	FleetTTL = 5 * time.Second
)

// Start brings the stack up. Close it when done.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	if o.Fleet == nil {
		if o.Fleet, err = DevFleet(); err != nil {
			return nil, err
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s = &Stack{Clock: clock.NewFake(o.Start), Fleet: o.Fleet, URLs: map[string]string{}, Token: secret.New(randomHex(24)), rewrap: o.Rewrap}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	// COS: a real S3 server.
	root, err := os.MkdirTemp("", "keyguard-s3-")
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() error { return os.RemoveAll(root) })
	srv, stop, err := s3server.Launch(ctx, o.Versitygw, root)
	if err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	s.S3 = srv
	s.closers = append(s.closers, stop)
	cos, err := objstore.NewCOSClient(objstore.Options{Endpoint: srv.Endpoint, Region: srv.Region, HMACKeyID: srv.AccessKey, HMACSecret: srv.SecretKey})
	if err != nil {
		return nil, err
	}
	s.Objects = objstore.NewCOS(cos, srv.Bucket, "keyguard/")
	if o.WrapObjects != nil {
		s.Objects = o.WrapObjects(s.Objects)
	}
	s.States = state.NewObjectStore(s.Objects)
	s.fleet = config.Static{F: o.Fleet}
	if o.FleetInBucket {
		if _, err := s.Objects.Put(ctx, FleetKey, o.FleetYAML, objstore.Cond{IfNoneMatch: true}); err != nil {
			return nil, fmt.Errorf("store the fleet policy: %w", err)
		}
		s.fleet = &runtime.COSFleet{Objects: s.Objects, Key: FleetKey, TTL: FleetTTL, Log: log}
	}

	// Event Notifications (with IAM), on its own listener.
	apiKey := randomHex(16)
	s.EN = enemu.New(enemu.Options{APIKey: apiKey, InstanceID: enInstance, RetryWait: 5 * time.Millisecond, AttemptTimeout: 10 * time.Second, Logger: log, Fault: o.ENFault})
	s.closers = append(s.closers, func() error { s.EN.Close(); return nil })
	enURL, err := s.serve(s.EN)
	if err != nil {
		return nil, err
	}
	s.apiKey, s.enURL = apiKey, enURL
	sender := func(fn string) (*notify.Client, error) {
		auth, err := notify.NewIAMAuthenticator(apiKey, enURL)
		if err != nil {
			return nil, err
		}
		return notify.New(notify.Options{URL: enURL, InstanceID: enInstance, SourceID: enSourceID, Source: "keyguard/" + fn, Authenticator: auth, Clock: s.Clock, Logger: log})
	}
	if s.Ops, err = sender("ops"); err != nil {
		return nil, err
	}
	runnerSend, err := sender(config.FnRunner)
	if err != nil {
		return nil, err
	}
	s.Sim = &simdb2.Simulated{Clock: s.Clock, Send: runnerSend, Catalog: catalog.New(s.Objects), Fail: o.Fail, Durations: o.Durations, Rewrapping: s.Rewrapping, Log: log}

	// Key Protect, holding the fleet's keys, with the Db2 instances registered to them.
	if err := s.startKeyProtect(apiKey); err != nil {
		return nil, err
	}

	execs := map[string]scheduler.Executor{simdb2.Name: s.Sim}
	if o.Db2CLI != nil {
		exec, err := s.db2cli(o, apiKey, enURL, log)
		if err != nil {
			return nil, err
		}
		execs[config.ExecDb2CLI] = exec
	}
	if exec, err := s.db2saas(apiKey, log); err != nil {
		return nil, err
	} else if exec != nil {
		execs[config.ExecDb2SaaS] = exec
	}

	// The three functions, composed as the deployed mains compose them.
	fleet := s.fleet
	routes := map[string]map[string]edge.Handler{}
	for _, fn := range config.Apps {
		send, err := sender(fn)
		if err != nil {
			return nil, err
		}
		flog := log.With("fn", fn)
		d := runtime.Deps{Log: flog, Objects: s.Objects, States: s.States, Send: send, Fleet: fleet, Clock: s.Clock, Execs: execs}
		if fn == config.FnScheduler {
			d.Keys = runtime.KeyWatcher{C: s.Keys}
		}
		if routes[fn], err = runtime.Routes(fn, d); err != nil {
			return nil, err
		}
		u, err := s.serve(edge.Mux(edge.Options{Token: s.Token, Logger: flog}, routes[fn]))
		if err != nil {
			return nil, err
		}
		s.URLs[fn] = u
	}
	handlers := routes

	// Subscriptions, from the same routing table the Terraform is checked against.
	auth := map[string]string{"Authorization": "Bearer " + s.Token.Reveal()}
	for _, r := range config.Routes {
		if r.Kind != "app" {
			continue
		}
		if _, ok := handlers[r.Function][r.Path]; !ok {
			continue // a route whose handler this stack does not run yet
		}
		url := s.URLs[r.Function] + r.Path
		types := r.Types
		if r.Periodic {
			types = []string{events.TypeTick}
		}
		if err := s.EN.Subscribe(routeSubscription(r, types, url, auth)); err != nil {
			return nil, err
		}
		if r.CloudLogsAlerts {
			if err := s.EN.Subscribe(enemu.Subscription{Name: r.Function + r.Path + "-cloud-logs", TypePrefix: events.CloudLogsAlertPrefix, URL: url, Headers: auth}); err != nil {
				return nil, err
			}
		}
	}
	if o.Db2CLI != nil {
		if err := s.startRestoreJob(o.Db2CLI, log); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// startKeyProtect runs the Key Protect emulator as the instance named by the fleet's key CRNs
// (one instance: the first key's), adds each key under its id and registers each database whose
// instance is a CRN, as a Db2 on Cloud instance registers itself with its key.
func (s *Stack) startKeyProtect(apiKey string) error {
	first := s.Fleet.KeyCRNs()[0]
	instance, _, err := keyprotect.KeyIDFromCRN(first)
	if err != nil {
		return err
	}
	parts := strings.Split(first, ":")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	// One IAM for every service, as in IBM Cloud: a token from it opens Key Protect too.
	s.KP = kpemu.New(kpemu.Options{IAM: s.EN.IAM(), InstanceID: instance, Region: parts[5], Account: strings.TrimPrefix(parts[6], "a/"), BaseURL: base, Clock: s.Clock})
	s.kpURL = base
	s.serveOn(ln, s.KP)
	for _, crn := range s.Fleet.KeyCRNs() {
		inst, id, err := keyprotect.KeyIDFromCRN(crn)
		if err != nil || inst != instance {
			return fmt.Errorf("key %s: the local stack emulates one Key Protect instance (%s)", crn, instance)
		}
		if got := s.KP.AddKeyWithID(id, "keyguard-"+id[:8]); got != crn {
			return fmt.Errorf("emulated key CRN %s does not match the fleet's %s", got, crn)
		}
		for _, db := range s.Fleet.ByKey(crn) {
			if strings.HasPrefix(db.Instance, "crn:") {
				if err := s.KP.AddRegistration(id, db.Instance); err != nil {
					return err
				}
			}
		}
	}
	s.Keys, err = keyprotect.New(keyprotect.Options{URL: base, InstanceID: instance, APIKey: apiKey, TokenURL: base + "/identity/token"})
	return err
}

// RotateKey rotates a key in Key Protect, as its rotation policy would, and has each registered
// database report the new version after its Rewrap delay. It returns the new version.
func (s *Stack) RotateKey(crn string) (string, error) {
	_, id, err := keyprotect.KeyIDFromCRN(crn)
	if err != nil {
		return "", err
	}
	v, err := s.KP.Rotate(id)
	if err != nil || s.rewrap == nil {
		return v, err
	}
	for _, db := range s.Fleet.ByKey(crn) {
		if !strings.HasPrefix(db.Instance, "crn:") {
			continue
		}
		inst, name := db.Instance, db.Name
		s.setRewrapping(name, true)
		s.Clock.AfterFunc(s.rewrap(db), func() {
			_ = s.KP.SetRegistrationVersion(id, inst, v)
			s.setRewrapping(name, false)
		})
	}
	return v, nil
}

func (s *Stack) setRewrapping(db string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy == nil {
		s.busy = map[string]bool{}
	}
	s.busy[db] = on
}

// Rewrapping reports whether the simulated Db2 of db is re-wrapping its keys.
func (s *Stack) Rewrapping(db string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy[db]
}

// serve runs h on a new loopback listener and returns its base URL.
func (s *Stack) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s.serveOn(ln, h)
	return "http://" + ln.Addr().String(), nil
}

func (s *Stack) serveOn(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	})
}

// Tick delivers one periodic-timer tick through Event Notifications and waits until every
// delivery it caused has settled.
func (s *Stack) Tick(ctx context.Context) error {
	s.tickN++
	now := s.Clock.Now()
	_, err := s.EN.Publish(enemu.Notification{SpecVersion: "1.0", ID: fmt.Sprintf("tick-%d", now.Unix()), Source: "/en/periodic-timer/keyguard",
		Type: events.TypeTick, Time: now, SourceID: "periodic-timer", DefaultShort: "tick", DefaultLong: "periodic timer tick", Data: []byte(`{}`)})
	if err != nil {
		return fmt.Errorf("publish tick: %w", err)
	}
	return s.settle(ctx)
}

// settle waits until Event Notifications has nothing in flight and no runner is running, and
// again after each runner finished (its outcome is a new delivery).
func (s *Stack) settle(ctx context.Context) error {
	if err := s.EN.WaitIdle(ctx); err != nil {
		return err
	}
	for _, w := range s.waiters {
		if err := w.Wait(ctx); err != nil {
			return err
		}
	}
	return s.EN.WaitIdle(ctx)
}

// Advance moves simulated time by d (simulated runs that finish by then report through Event
// Notifications) and waits for the deliveries to settle.
func (s *Stack) Advance(ctx context.Context, d time.Duration) error {
	s.Clock.Advance(d)
	return s.settle(ctx)
}

// Publish sends an event as an outside party and waits for its delivery to settle.
func (s *Stack) Publish(ctx context.Context, id string, p events.Payload) error {
	if err := s.Ops.Send(ctx, id, p); err != nil {
		return err
	}
	return s.EN.WaitIdle(ctx)
}

// State reads a database's state from the S3 server.
func (s *Stack) State(ctx context.Context, db string) (*state.State, error) {
	st, _, err := s.States.Get(ctx, db)
	return st, err
}

// Close stops everything, last started first.
func (s *Stack) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// PublishCloudLogsRotation delivers, as IBM Cloud Logs would through Event Notifications, an alert
// on a kms.secrets.rotate activity event for keyCRN (version may be empty: the activity event
// does not always carry it), and waits for the delivery to settle.
func (s *Stack) PublishCloudLogsRotation(ctx context.Context, keyCRN, version string, at time.Time) error {
	instance, id, err := keyprotect.KeyIDFromCRN(keyCRN)
	if err != nil {
		return err
	}
	activity := map[string]any{
		"action": "kms.secrets.rotate", "outcome": "success", "eventTime": at.UTC().Format("2006-01-02T15:04:05.00-0700"),
		"target":      map[string]any{"id": keyCRN, "typeURI": "kms/secrets"},
		"requestData": map[string]any{"requestURI": "/api/v2/keys/" + id + "/actions/rotate", "instanceID": instance},
	}
	if version != "" {
		activity["responseData"] = map[string]any{"keyVersionId": version}
	}
	data, err := json.Marshal(map[string]any{
		"alert_definition": map[string]any{"name": "keyguard-kms-rotate", "alert_type": "StandardMoreThanAlertEvent"},
		"log_example":      activity, "log_example_truncated": false, "status": "triggered",
	})
	if err != nil {
		return err
	}
	_, err = s.EN.Publish(enemu.Notification{SpecVersion: "1.0", ID: "logs-" + id + "-" + strconv.FormatInt(at.Unix(), 10),
		Source: "crn:v1:bluemix:public:logs:us-south:a/0::", Type: events.CloudLogsAlertPrefix + "keyguard-kms-rotate" + events.CloudLogsAlertSuffix,
		Time: s.Clock.Now(), SourceID: "cloud-logs", DefaultShort: "WARNING - keyguard-kms-rotate", DefaultLong: "Triggered", Data: data})
	if err != nil {
		return err
	}
	return s.EN.WaitIdle(ctx)
}

// OperatorEnv is the environment under which the operator command (and the runner) works
// against this stack: its S3 server, Event Notifications and IAM, and the fleet policy file
// fleetFile (which must load as a deployment's does: no simulated database). With fleetFile
// empty the command reads the policy object in the bucket (FleetInBucket), as in a deployment.
func (s *Stack) OperatorEnv(fleetFile string) []string {
	env := []string{
		config.EnvIAMURL + "=" + s.enURL, config.EnvAPIKey + "=" + s.apiKey,
		config.EnvCOSEndpoint + "=" + s.S3.Endpoint, config.EnvCOSRegion + "=" + s.S3.Region, config.EnvCOSBucket + "=" + s.S3.Bucket,
		config.EnvCOSPrefix + "=keyguard/", config.EnvCOSHMACKey + "=" + s.S3.AccessKey, config.EnvCOSHMACSecret + "=" + s.S3.SecretKey,
		config.EnvENURL + "=" + s.enURL, config.EnvENInstanceID + "=" + enInstance, config.EnvENSourceID + "=" + enSourceID,
	}
	if fleetFile != "" {
		env = append(env, config.EnvFleetFile+"="+fleetFile)
	}
	return env
}
