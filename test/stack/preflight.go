package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/cosconfig"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/preflight"
	"github.com/keyguard-dev/keyguard/shared/runtime"
	"github.com/keyguard-dev/keyguard/test/ceemu"
	"github.com/keyguard-dev/keyguard/test/cosgate"
	"github.com/keyguard-dev/keyguard/test/db2saasemu"
	"github.com/keyguard-dev/keyguard/test/enemu"
	"github.com/keyguard-dev/keyguard/test/iamemu"
	"github.com/keyguard-dev/keyguard/test/simdb2"
)

// Names of what the preflight finds in the local stack, as the Terraform module names them in
// a deployment (prefix keyguard-local).
const (
	periodicSourceID = "periodic-timer"
	ceProject        = "keyguard-local-project"
	ceRegion         = "local"
	// RunnerJob is the Code Engine job of the runner in the stack's project.
	RunnerJob = "keyguard-local-runner"
	// AlertSubscription is the subscription that mails alerts to a person.
	AlertSubscription = "alerts/email"
	// RestoreJob is the restore job Event Notifications starts.
	RestoreJob = "keyguard-local-restore"
)

// cosInstanceCRN names the stack's Object Storage instance (the S3 server is reached with HMAC
// keys; the CRN only names it in IAM authorizations).
func (s *Stack) cosInstanceCRN() string {
	return "crn:v1:bluemix:public:cloud-object-storage:global:a/" + s.account() + ":c0500000-0000-4000-8000-00000000000c::"
}

func (s *Stack) account() string {
	return strings.TrimPrefix(strings.Split(s.Fleet.KeyCRNs()[0], ":")[6], "a/")
}

// routeSubscription is the Event Notifications subscription of route r, named and described as
// the Terraform module names its topic, destination and subscription: the tick route on the
// periodic-timer source with its schedule, every other route on keyguard's API source.
func routeSubscription(r config.Route, types []string, url string, headers map[string]string) enemu.Subscription {
	sub := enemu.Subscription{Name: r.Function + r.Path, Types: types, URL: url, Headers: headers, SourceIDs: []string{enSourceID},
		Destination: enemu.Destination{Name: "keyguard-local-" + r.Function + strings.ReplaceAll(r.Path, "/", "-")}}
	if r.Periodic {
		sub.SourceIDs, sub.Schedule = []string{periodicSourceID}, "*/15 * * * *"
	}
	return sub
}

// RouteSubscription is the subscription Start made for route r (to put back one a test took
// away).
func (s *Stack) RouteSubscription(r config.Route) enemu.Subscription {
	types := r.Types
	if r.Periodic {
		types = []string{events.TypeTick}
	}
	return routeSubscription(r, types, s.URLs[r.Function]+r.Path, map[string]string{"Authorization": "Bearer " + s.Token.Reveal()})
}

// preflightWiring is what EnablePreflight adds.
type preflightWiring struct {
	gateURL, ceURL string
}

// EnablePreflight wires into the stack what a deployment preflight checks, as the Terraform
// module wires a deployment: the bucket versioned and, through a gate (test/cosgate), encrypted
// with the fleet's first root key and closed to bucket configuration writes (the functions'
// custom roles); Event Notifications' sources, an alert subscription to a person and the restore
// job's route; a Code Engine project with the runner job, whose job runs the stack executes as
// the runner's job entry would; and the IAM authorizations Db2, Object Storage and Event
// Notifications need. Call it right after Start.
func (s *Stack) EnablePreflight(ctx context.Context) error {
	if s.pf != nil {
		return nil
	}
	direct, err := objstore.NewCOSClient(objstore.Options{Endpoint: s.S3.Endpoint, Region: s.S3.Region, HMACKeyID: s.S3.AccessKey, HMACSecret: s.S3.SecretKey})
	if err != nil {
		return err
	}
	if err := cosconfig.New(direct, s.S3.Bucket).PutVersioning(ctx, "Enabled"); err != nil {
		return fmt.Errorf("version the bucket: %w", err)
	}
	g, err := cosgate.New(cosgate.Options{Target: s.S3.Endpoint, Bucket: s.S3.Bucket, RootKeyCRN: s.Fleet.KeyCRNs()[0]})
	if err != nil {
		return err
	}
	g.DenyBucketConfiguration()
	gateURL, stop, err := cosgate.Start(g)
	if err != nil {
		return err
	}
	s.closers = append(s.closers, stop)
	s.Gate = g

	s.EN.AddSource(enemu.Source{ID: enSourceID, Name: "keyguard-local-events", Type: "api", Enabled: true})
	s.EN.AddSource(enemu.Source{ID: periodicSourceID, Name: "Periodic timer", Type: "periodic-timer", Enabled: true})
	if err := s.EN.Subscribe(AlertsByEmail()); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	jobURL, err := s.serve(s.jobEntry(config.FnRestore, log))
	if err != nil {
		return err
	}
	var restore config.Route
	for _, r := range config.Routes {
		if r.Function == config.FnRestore {
			restore = r
		}
	}
	sub := routeSubscription(restore, restore.Types, jobURL, nil)
	sub.Name, sub.Destination.CEType, sub.Destination.JobName = "restore/job", "job", RestoreJob
	if err := s.EN.Subscribe(sub); err != nil {
		return err
	}

	runner := s.jobEntry(config.FnRunner, log)
	s.CE = ceemu.New(ceemu.Options{IAM: s.EN.IAM(), ProjectID: ceProject, Jobs: []string{RunnerJob}, Logger: log, OnRun: func(r ceemu.JobRun) {
		status, reason := ceemu.StatusCompleted, ""
		if err := runner.run(context.Background(), r.Getenv); err != nil {
			status, reason = ceemu.StatusFailed, err.Error()
		}
		_ = s.CE.SetStatus(r.Name, status, reason)
	}})
	ceURL, err := s.serve(s.CE)
	if err != nil {
		return err
	}

	iam := s.EN.IAM()
	kmsInstance := strings.Split(s.Fleet.KeyCRNs()[0], ":")[7]
	iam.AddAuthorization(iamemu.Authorization{Account: s.account(), Source: "cloud-object-storage", SourceInstance: strings.Split(s.cosInstanceCRN(), ":")[7],
		Target: "kms", TargetInstance: kmsInstance, Roles: []string{"Reader"}})
	seen := map[string]bool{}
	for _, db := range s.Fleet.Databases {
		parts := strings.Split(db.Instance, ":")
		if len(parts) < 8 || parts[4] != "dashdb-for-transactions" || seen[parts[7]] {
			continue
		}
		seen[parts[7]] = true
		iam.AddAuthorization(iamemu.Authorization{Account: s.account(), Source: "dashdb-for-transactions", SourceInstance: parts[7],
			Target: "kms", TargetInstance: strings.Split(db.KeyCRN, ":")[7], Roles: []string{"Reader"}})
	}
	iam.AddAuthorization(iamemu.Authorization{Account: s.account(), Source: "event-notifications", SourceInstance: enInstance,
		Target: "codeengine", TargetInstance: ceProject, Roles: []string{"Viewer", "Writer"}})
	s.pf = &preflightWiring{gateURL: gateURL, ceURL: ceURL}
	return nil
}

// AlertsByEmail is the stack's subscription of keyguard's alerts to a person.
func AlertsByEmail() enemu.Subscription {
	return enemu.Subscription{Name: AlertSubscription, Topic: "keyguard-local-alerts", SourceIDs: []string{enSourceID}, Types: []string{events.TypeAlert},
		Destination: enemu.Destination{Name: "email", Type: "smtp_ibm", Subscribed: []string{"ops@keyguard.local"}}}
}

// jobEntry is a job of function fn as a Code Engine job run executes it: the notification in
// ibmendata, handled by the function's composition through the job entry (runtime.JobHandler,
// wrapped by runtime.WithPreflight). The stack runs restores and backups otherwise, so the job's
// own handler takes only the preflight's probe and refuses the rest, saying so.
type jobEntry struct {
	fn      string
	log     *slog.Logger
	handler edge.Handler
}

func (s *Stack) jobEntry(fn string, log *slog.Logger) *jobEntry {
	refuse := edge.HandlerFunc(func(_ context.Context, e events.Event) (edge.Result, error) {
		return edge.Result{}, edge.Reject("the local stack's %s job takes only the preflight's probe, not %s", fn, e.Type)
	})
	d := runtime.Deps{Log: log, Objects: s.Objects, States: s.States, Fleet: config.Static{F: s.Fleet}, Clock: s.Clock}
	return &jobEntry{fn: fn, log: log, handler: runtime.JobHandler(runtime.WithPreflight(fn, d, map[string]edge.Handler{config.PathEvents: refuse}, true))}
}

func (j *jobEntry) run(ctx context.Context, getenv func(string) string) error {
	return edge.RunJob(ctx, j.handler, getenv, j.log.With("fn", j.fn), time.Minute)
}

// ServeHTTP is Event Notifications starting the job: the body is the notification, which the
// job run gets in ibmendata. Like Code Engine, it accepts the run whatever the run then does.
func (j *jobEntry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, events.MaxBodyBytes+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	env := map[string]string{"ibmendata": string(body)}
	if err := j.run(r.Context(), func(k string) string { return env[k] }); err != nil {
		j.log.Warn("job run failed", "job", j.fn, "err", err)
	}
	w.WriteHeader(http.StatusAccepted)
}

// PreflightEnv is the environment keyguard preflight works under against this stack: the
// operator's (OperatorEnv), with Object Storage through the gate, its instance CRN, Key
// Protect, the Code Engine project and runner job (on the emulator: KEYGUARD_CE_URL), and the
// Db2 on Cloud API.
func (s *Stack) PreflightEnv(fleetFile string) []string {
	env := s.OperatorEnv(fleetFile)
	if s.pf != nil {
		for i, kv := range env {
			if strings.HasPrefix(kv, config.EnvCOSEndpoint+"=") {
				env[i] = config.EnvCOSEndpoint + "=" + s.pf.gateURL
			}
		}
	}
	instance, _, _ := keyprotect.KeyIDFromCRN(s.Fleet.KeyCRNs()[0])
	env = append(env, config.EnvCOSInstanceCRN+"="+s.cosInstanceCRN(), config.EnvKPURL+"="+s.kpURL, config.EnvKPInstanceID+"="+instance,
		config.EnvCEProjectID+"="+ceProject, config.EnvCERegion+"="+ceRegion, config.EnvCERunnerJob+"="+RunnerJob)
	if s.pf != nil {
		env = append(env, config.EnvCEURL+"="+s.pf.ceURL+ceemu.APIPrefix)
	}
	if s.saasURL != "" {
		env = append(env, config.EnvDb2SaaSURL+"="+s.saasURL+db2saasemu.ContextRoot)
	}
	return env
}

// PreflightDeployment is what keyguard preflight checks against this stack, built as the
// command builds it (runtime.LoadOperator, Build, PreflightDeployment with an operator's
// identity) from PreflightEnv, and then: the stack's fleet policy (which names the simulated
// Db2, a test executor), the stack's clock, and its ticks every tick of simulated time.
func (s *Stack) PreflightDeployment(tick time.Duration) (preflight.Deployment, error) {
	if s.pf == nil {
		return preflight.Deployment{}, errors.New("stack: call EnablePreflight first")
	}
	env := map[string]string{}
	for _, kv := range s.PreflightEnv("") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	c, err := runtime.LoadOperator(func(k string) string { return env[k] })
	if err != nil {
		return preflight.Deployment{}, err
	}
	d, err := runtime.Build(c)
	if err != nil {
		return preflight.Deployment{}, err
	}
	d.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	d.Clock = s.Clock
	pd, err := c.PreflightDeployment(d, true)
	if err != nil {
		return preflight.Deployment{}, err
	}
	pd.Fleet = config.Static{F: s.Fleet}
	pd.TestExecutors = map[string]string{simdb2.Name: "the local stack's simulated Db2"}
	pd.TickInterval = tick
	return pd, nil
}
