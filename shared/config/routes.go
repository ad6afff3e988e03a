package config

import "github.com/keyguard-dev/keyguard/events"

// Function names, as used for Code Engine apps and jobs and for functions/<name>/.
const (
	FnScheduler  = "scheduler"
	FnRotation   = "rotation"
	FnCompletion = "completion"
	FnRunner     = "runner"
	FnRestore    = "restore"
)

// HTTP paths every function app serves.
const (
	PathEvents  = "/events"  // keyguard and platform events (EN JSON or CloudEvents)
	PathTick    = "/tick"    // scheduler ticks (EN periodic timer, Knative ping, keyguard ticker)
	PathHealthz = "/healthz" // liveness; unauthenticated, changes nothing
	PathMetrics = "/metrics" // Prometheus exposition (scheduler); bearer token, changes nothing
)

// Route says which event types Event Notifications delivers to which function and path. The
// Terraform checks in infra/ assert that every route here has a topic rule and a subscription.
type Route struct {
	Function string
	// Kind is "app" (HTTP) or "job" (Code Engine job run with ibmendata).
	Kind  string
	Path  string
	Types []string
	// Periodic marks the route fed by the EN periodic-timer source instead of event types.
	Periodic bool
	// CloudLogsAlerts marks a route that also takes com.ibm.cloud.logs.*:AlertTriggered.
	CloudLogsAlerts bool
}

// Routes is the deployment's event routing. The deployment preflight's probe
// (events.TypePreflight) travels every route that carries event types, so a preflight proves each
// route's topic rule, subscription and destination by the receipt its function records.
var Routes = []Route{
	{Function: FnScheduler, Kind: "app", Path: PathTick, Periodic: true},
	{Function: FnScheduler, Kind: "app", Path: PathEvents, Types: []string{events.TypeBackupRequested, events.TypeTickShard, events.TypePreflight}},
	{Function: FnRotation, Kind: "app", Path: PathEvents, Types: []string{events.TypeKeyRotated, events.TypeKeyStateChanged, events.TypePreflight}, CloudLogsAlerts: true},
	{Function: FnCompletion, Kind: "app", Path: PathEvents, Types: []string{events.TypeBackupCompleted, events.TypeBackupFailed, events.TypePreflight}},
	{Function: FnRestore, Kind: "job", Types: []string{events.TypeRestoreRequested, events.TypePreflight}},
}

// Apps and Jobs list the functions deployed as Code Engine apps and jobs. The runner job is
// started by the scheduler through the Code Engine API, one job run per backup.
var (
	Apps = []string{FnScheduler, FnRotation, FnCompletion}
	Jobs = []string{FnRunner, FnRestore}
)
