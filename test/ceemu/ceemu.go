package ceemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/test/iamemu"
)

// Paths the emulator serves, besides iamemu.TokenPath.
const (
	APIPrefix   = "/v2"
	JobRunsPath = APIPrefix + "/projects/{project_id}/job_runs"
	JobRunPath  = APIPrefix + "/projects/{project_id}/job_runs/{name}"
	JobPath     = APIPrefix + "/projects/{project_id}/jobs/{name}"
)

// Job run statuses, as the API reports them.
const (
	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// Environment variable types the API takes in run_env_variables.
const (
	EnvLiteral = "literal"
)

var envTypes = []string{EnvLiteral, "config_map_full_reference", "secret_full_reference",
	"config_map_key_reference", "secret_key_reference"}

// nameRE is the form of Code Engine resource names (at most MaxNameLength characters).
var nameRE = regexp.MustCompile(`^[a-z0-9]([\-a-z0-9]*[a-z0-9])?$`)

// MaxNameLength is the longest job run name the API accepts.
const MaxNameLength = 63

const maxBodyBytes = 1 << 20

// Options configure an Emulator. The zero value of every field means its default.
type Options struct {
	// IAM checks bearer tokens and is mounted at /identity/token. When nil, an IAM emulator
	// accepting APIKey is created.
	IAM *iamemu.Emulator
	// APIKey is the API key of the IAM emulator created when IAM is nil.
	APIKey string
	// ProjectID, when set, is the only project the API answers for (404 for others).
	ProjectID string
	// Jobs, when set, are the only job names a run may reference (404 for others).
	Jobs []string
	// Region is reported in job runs (default us-south).
	Region string
	// OnRun, when set, is called in its own goroutine for every job run created (not for a
	// refused duplicate), after the run is recorded. The emulator never changes a run's status
	// by itself: the hook or the test does, with SetStatus.
	OnRun func(JobRun)
	// Clock stamps runs (wall clock when nil).
	Clock clock.Clock
	// Logger receives one line per created run and per refused request (slog.Default when nil).
	// Variable values are never logged.
	Logger *slog.Logger
}

// EnvVar is one entry of run_env_variables.
type EnvVar struct {
	Type      string `json:"type"`
	Name      string `json:"name,omitempty"`
	Value     string `json:"value,omitempty"`
	Reference string `json:"reference,omitempty"`
	Key       string `json:"key,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
}

// JobRun is a recorded job run.
type JobRun struct {
	ID        string
	Name      string
	ProjectID string
	JobName   string
	EnvVars   []EnvVar
	Arguments []string
	ArraySpec string
	Status    string
	// Reason is the last failure reason of a failed run (set with SetStatus).
	Reason    string
	CreatedAt time.Time
	StartedAt time.Time
	EndedAt   time.Time
}

// Getenv returns the value of the literal variable name ("" when absent); with it,
// events.FromJobEnv(run.Getenv) reads the event the run was started with.
func (r JobRun) Getenv(name string) string {
	v, _ := r.Lookup(name)
	return v
}

// Lookup returns the value of the literal variable name. When a name repeats, the last wins.
func (r JobRun) Lookup(name string) (string, bool) {
	val, ok := "", false
	for _, v := range r.EnvVars {
		if v.Type == EnvLiteral && v.Name == name {
			val, ok = v.Value, true
		}
	}
	return val, ok
}

// Environ returns the literal variables as NAME=VALUE, in order (the form os/exec takes).
func (r JobRun) Environ() []string {
	var out []string
	for _, v := range r.EnvVars {
		if v.Type == EnvLiteral {
			out = append(out, v.Name+"="+v.Value)
		}
	}
	return out
}

func (r JobRun) clone() JobRun {
	r.EnvVars = slices.Clone(r.EnvVars)
	r.Arguments = slices.Clone(r.Arguments)
	return r
}

// Emulator is a Code Engine project API. Build it with New; it is an http.Handler.
type Emulator struct {
	iam       *iamemu.Emulator
	projectID string
	jobs      []string
	region    string
	onRun     func(JobRun)
	clock     clock.Clock
	log       *slog.Logger
	mux       *http.ServeMux

	mu       sync.Mutex
	url      string
	runs     map[string]*JobRun // key: project + "/" + name
	order    []string
	fail     []int
	requests int
	seq      int
}

// New returns an Emulator configured by o.
func New(o Options) *Emulator {
	if o.IAM == nil {
		o.IAM = iamemu.New(o.APIKey)
	}
	if o.Region == "" {
		o.Region = "us-south"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Emulator{
		iam:       o.IAM,
		projectID: o.ProjectID,
		jobs:      slices.Clone(o.Jobs),
		region:    o.Region,
		onRun:     o.OnRun,
		clock:     clock.Or(o.Clock),
		log:       o.Logger.With("component", "ceemu"),
		runs:      map[string]*JobRun{},
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+iamemu.TokenPath, e.iam)
	mux.HandleFunc("POST "+JobRunsPath, e.api(e.handleCreate))
	mux.HandleFunc("GET "+JobRunPath, e.api(e.handleGet))
	mux.HandleFunc("DELETE "+JobRunPath, e.api(e.handleDelete))
	mux.HandleFunc("GET "+JobPath, e.api(e.handleGetJob))
	mux.HandleFunc(APIPrefix+"/", e.api(func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "not_found", "no such operation: "+r.Method+" "+r.URL.Path)
	}))
	e.mux = mux
	return e
}

// ServeHTTP serves the Code Engine API and the IAM token endpoint.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.mux.ServeHTTP(w, r) }

// IAM returns the IAM emulator that issues and checks this emulator's tokens.
func (e *Emulator) IAM() *iamemu.Emulator { return e.iam }

// URL is the server's base URL when the emulator was started by Start, else "". It is the IAM
// URL (token endpoint URL()+"/identity/token").
func (e *Emulator) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.url
}

// APIURL is the Code Engine API URL (URL()+"/v2"), the counterpart of
// https://api.<region>.codeengine.cloud.ibm.com/v2.
func (e *Emulator) APIURL() string { return e.URL() + APIPrefix }

// JobRuns returns a copy of every recorded job run, in creation order.
func (e *Emulator) JobRuns() []JobRun {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]JobRun, 0, len(e.order))
	for _, k := range e.order {
		out = append(out, e.runs[k].clone())
	}
	return out
}

// JobRun returns the job run called name (in any project).
func (e *Emulator) JobRun(name string) (JobRun, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range e.order {
		if r := e.runs[k]; r.Name == name {
			return r.clone(), true
		}
	}
	return JobRun{}, false
}

// SetStatus moves the job run called name to status (StatusPending, StatusRunning,
// StatusCompleted or StatusFailed); reason is the failure reason reported for a failed run.
func (e *Emulator) SetStatus(name, status, reason string) error {
	if !slices.Contains([]string{StatusPending, StatusRunning, StatusCompleted, StatusFailed}, status) {
		return fmt.Errorf("ceemu: unknown status %q", status)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, k := range e.order {
		r := e.runs[k]
		if r.Name != name {
			continue
		}
		now := e.clock.Now().UTC()
		r.Status, r.Reason = status, reason
		if status != StatusPending && r.StartedAt.IsZero() {
			r.StartedAt = now
		}
		if status == StatusCompleted || status == StatusFailed {
			r.EndedAt = now
		}
		return nil
	}
	return fmt.Errorf("ceemu: no job run %q", name)
}

// Delete removes the job run called name, as Code Engine does when a run is deleted or cleaned
// up. It reports whether there was one.
func (e *Emulator) Delete(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, k := range e.order {
		if e.runs[k].Name == name {
			delete(e.runs, k)
			e.order = slices.Delete(e.order, i, i+1)
			return true
		}
	}
	return false
}

// FailNext makes the next n API requests (not token requests) answer status (e.g. 429, 503)
// without doing anything.
func (e *Emulator) FailNext(n, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for range n {
		e.fail = append(e.fail, status)
	}
}

// Requests counts the API requests that reached the emulator, failed or not.
func (e *Emulator) Requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests
}

// api wraps an API handler with failure injection, the bearer token check and the project check.
func (e *Emulator) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.requests++
		var forced int
		if len(e.fail) > 0 {
			forced, e.fail = e.fail[0], e.fail[1:]
		}
		e.mu.Unlock()
		if forced != 0 {
			apiError(w, forced, "injected_failure", "injected failure")
			return
		}
		if !e.iam.Valid(r.Header.Get("Authorization")) {
			e.log.Warn("unauthenticated request", "method", r.Method, "path", r.URL.Path)
			apiError(w, http.StatusUnauthorized, "unauthorized", "missing, invalid or expired bearer token")
			return
		}
		if p := r.PathValue("project_id"); p != "" && e.projectID != "" && p != e.projectID {
			apiError(w, http.StatusNotFound, "project_not_found", "project "+p+" not found")
			return
		}
		h(w, r)
	}
}

type createBody struct {
	JobName        string   `json:"job_name"`
	Name           string   `json:"name"`
	ImageReference string   `json:"image_reference"`
	RunArguments   []string `json:"run_arguments"`
	RunEnvVars     []EnvVar `json:"run_env_variables"`
	ScaleArraySpec string   `json:"scale_array_spec"`
}

func (e *Emulator) handleCreate(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		apiError(w, http.StatusBadRequest, "invalid_content_type", "Content-Type must be application/json")
		return
	}
	var b createBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(&b); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_body", "body is not a job run prototype: "+err.Error())
		return
	}
	project := r.PathValue("project_id")
	switch {
	case b.JobName == "":
		apiError(w, http.StatusBadRequest, "invalid_body", "job_name is required (the emulator runs jobs only)")
		return
	case !e.jobExists(b.JobName):
		apiError(w, http.StatusNotFound, "job_not_found", "job "+b.JobName+" not found")
		return
	case b.Name != "" && (len(b.Name) > MaxNameLength || !nameRE.MatchString(b.Name)):
		apiError(w, http.StatusBadRequest, "invalid_name",
			fmt.Sprintf("name %q must match %s and have at most %d characters", b.Name, nameRE, MaxNameLength))
		return
	}
	if b.ScaleArraySpec == "" {
		b.ScaleArraySpec = "0"
	}
	if _, err := arraySize(b.ScaleArraySpec); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_scale_array_spec", err.Error())
		return
	}
	for i, v := range b.RunEnvVars {
		if !slices.Contains(envTypes, v.Type) {
			apiError(w, http.StatusBadRequest, "invalid_env_variable", fmt.Sprintf("run_env_variables[%d]: unknown type %q", i, v.Type))
			return
		}
		if v.Type == EnvLiteral && v.Name == "" {
			apiError(w, http.StatusBadRequest, "invalid_env_variable", fmt.Sprintf("run_env_variables[%d]: a literal needs a name", i))
			return
		}
	}

	e.mu.Lock()
	e.seq++
	name := b.Name
	if name == "" {
		name = fmt.Sprintf("%s-run-%d", b.JobName, e.seq)
	}
	key := project + "/" + name
	if _, taken := e.runs[key]; taken {
		e.mu.Unlock()
		apiError(w, http.StatusConflict, "job_run_already_exists", "job run "+name+" already exists")
		return
	}
	run := &JobRun{ID: randomID(), Name: name, ProjectID: project, JobName: b.JobName, EnvVars: b.RunEnvVars,
		Arguments: b.RunArguments, ArraySpec: b.ScaleArraySpec, Status: StatusPending, CreatedAt: e.clock.Now().UTC()}
	e.runs[key] = run
	e.order = append(e.order, key)
	snapshot := run.clone()
	body := e.view(run)
	e.mu.Unlock()

	e.log.Info("job run created", "project", project, "job", b.JobName, "name", name, "env_vars", len(b.RunEnvVars))
	if e.onRun != nil {
		go e.onRun(snapshot)
	}
	writeJSON(w, http.StatusAccepted, body)
}

func (e *Emulator) handleGet(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("project_id") + "/" + r.PathValue("name")
	e.mu.Lock()
	run, ok := e.runs[key]
	var body map[string]any
	if ok {
		body = e.view(run)
	}
	e.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "job_run_not_found", "job run "+r.PathValue("name")+" not found")
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// handleDelete deletes a job run, which stops its instances (202), or answers 404.
func (e *Emulator) handleDelete(w http.ResponseWriter, r *http.Request) {
	if !e.Delete(r.PathValue("name")) {
		apiError(w, http.StatusNotFound, "job_run_not_found", "job run "+r.PathValue("name")+" not found")
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// view is the API representation of r. The caller holds e.mu.
func (e *Emulator) view(r *JobRun) map[string]any {
	n, _ := arraySize(r.ArraySpec)
	details := map[string]any{"requested": n, "pending": 0, "running": 0, "succeeded": 0, "failed": 0, "unknown": 0}
	switch r.Status {
	case StatusPending:
		details["pending"], details["pending_indices"] = n, r.ArraySpec
	case StatusRunning:
		details["running"], details["running_indices"] = n, r.ArraySpec
	case StatusCompleted:
		details["succeeded"], details["succeeded_indices"] = n, r.ArraySpec
	case StatusFailed:
		details["failed"], details["failed_indices"] = n, r.ArraySpec
		if r.Reason != "" {
			details["indices_details"] = map[string]any{firstIndex(r.ArraySpec): map[string]any{
				"status": StatusFailed, "last_failure_reason": r.Reason, "retries": 0}}
		}
	}
	if !r.StartedAt.IsZero() {
		details["start_time"] = r.StartedAt.Format(time.RFC3339)
	}
	if !r.EndedAt.IsZero() {
		details["completion_time"] = r.EndedAt.Format(time.RFC3339)
	}
	env := r.EnvVars
	if env == nil {
		env = []EnvVar{}
	}
	args := r.Arguments
	if args == nil {
		args = []string{}
	}
	href := fmt.Sprintf("%s/projects/%s/job_runs/%s", e.apiURLLocked(), r.ProjectID, r.Name)
	return map[string]any{
		"id": r.ID, "name": r.Name, "href": href, "job_name": r.JobName, "project_id": r.ProjectID, "region": e.region,
		"resource_type": "job_run_v2", "created_at": r.CreatedAt.Format(time.RFC3339), "run_env_variables": env,
		"run_arguments": args, "scale_array_spec": r.ArraySpec, "run_mode": "task",
		"status": r.Status, "status_details": details,
	}
}

func (e *Emulator) apiURLLocked() string { return e.url + APIPrefix }

// arraySize counts the indices of an array spec such as "0", "1-5,7".
func arraySize(spec string) (int, error) {
	seen := map[int]bool{}
	for part := range strings.SplitSeq(spec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b > 9999999 || len(seen)+b-a >= 1000 {
			return 0, fmt.Errorf("scale_array_spec %q: %q is not an index or a range of at most 1000 indices", spec, part)
		}
		for i := a; i <= b; i++ {
			seen[i] = true
		}
	}
	return len(seen), nil
}

func firstIndex(spec string) string {
	first, _, _ := strings.Cut(spec, ",")
	first, _, _ = strings.Cut(first, "-")
	return first
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError writes IBM's platform error body.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{
		"errors":      []map[string]string{{"code": code, "message": msg}},
		"trace":       randomID(),
		"status_code": status,
	})
}
