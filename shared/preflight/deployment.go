package preflight

import (
	"context"
	"errors"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// ErrNotFound is what an adapter returns (wrapped) when the thing looked up does not exist: the
// runner job, a key. Other errors are failures to look.
var ErrNotFound = errors.New("not found")

// Credentials obtains an IAM token for the identity the checks run as.
type Credentials interface {
	// Token fetches a token and says whom it is for. Safe for concurrent use.
	Token(ctx context.Context) (Identity, error)
}

// Identity is what an IAM access token says of its holder (fields it does not carry are empty).
type Identity struct {
	// Subject is the IAM id or subject (e.g. iam-ServiceId-..., iam-Profile-...).
	Subject string
	// Account is the account id the token is for.
	Account string
	Expires time.Time
}

// Objects is the deployment's bucket, under its key prefix (objstore.Store satisfies it). See
// objstore.Store for each method's contract.
type Objects interface {
	Get(ctx context.Context, key string) ([]byte, string, error)
	Put(ctx context.Context, key string, body []byte, c objstore.Cond) (string, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]objstore.Info, error)
}

// Bucket is what any function's identity may read of the bucket itself (HeadBucket).
type Bucket interface {
	// Head returns the bucket's Key Protect settings; an error wrapping ErrNotFound when the
	// bucket does not exist.
	Head(ctx context.Context) (BucketHead, error)
}

// BucketHead is what HeadBucket says of a bucket on IBM Cloud Object Storage.
type BucketHead struct {
	Name string
	// KeyProtect is true when the bucket is encrypted with a Key Protect root key, RootKeyCRN.
	KeyProtect bool
	RootKeyCRN string
}

// BucketConfig reads and (for the least-privilege probe) writes the bucket's configuration. An
// operator's identity may read it; the functions' custom roles cannot.
type BucketConfig interface {
	// Versioning returns the versioning status: "Enabled", "Suspended", or "" when it was never
	// configured.
	Versioning(ctx context.Context) (string, error)
	// ObjectLock reports whether the bucket has an Object Lock configuration.
	ObjectLock(ctx context.Context) (bool, error)
	// PutVersioning sets the versioning status. The preflight only ever writes back the status
	// it has just read, so a success changes nothing: it proves the identity could change it.
	PutVersioning(ctx context.Context, status string) error
	// Refused reports whether err is the bucket's refusal of the request for lack of access
	// (403 AccessDenied), as opposed to any other failure.
	Refused(err error) bool
}

// Keys reads root keys from Key Protect. Methods return an error wrapping ErrNotFound for a key
// that does not exist.
type Keys interface {
	Key(ctx context.Context, crn string) (Key, error)
	// Versions returns the key's versions, newest first.
	Versions(ctx context.Context, crn string) ([]string, error)
	Registrations(ctx context.Context, crn string) ([]Registration, error)
}

// Key is a root key's metadata.
type Key struct {
	State   events.KeyState
	Version string
}

// Registration is a resource registered as protected by a key.
type Registration struct {
	ResourceCRN string
	KeyVersion  string
}

// Authorizations looks up IAM service-to-service authorization policies.
type Authorizations interface {
	// Authorizations returns the active authorization policies of account.
	Authorizations(ctx context.Context, account string) ([]Authorization, error)
}

// Authorization is one service-to-service authorization policy. An empty instance means the
// policy names the whole service (every instance).
type Authorization struct {
	ID             string
	Source         string // service name, e.g. dashdb-for-transactions
	SourceInstance string // instance GUID
	Target         string
	TargetInstance string
	// Roles are display names (Reader) or role CRNs (crn:v1:bluemix:public:iam::::serviceRole:Reader).
	Roles []string
}

// Publisher sends keyguard events through Event Notifications (notify.Client satisfies it).
type Publisher interface {
	Send(ctx context.Context, id string, p events.Payload) error
}

// Topology reads an Event Notifications instance's sources, topics, subscriptions and
// destinations.
type Topology interface {
	Topology(ctx context.Context) (ENTopology, error)
}

// ENTopology is the routing of an Event Notifications instance.
type ENTopology struct {
	Sources      []ENSource
	Topics       []ENTopic
	Destinations []ENDestination
}

// ENSource is a source of notifications.
type ENSource struct {
	ID, Name string
	// Type is e.g. "api" (keyguard's own) or "periodic-timer".
	Type    string
	Enabled bool
}

// ENTopic is a topic: the rules that admit notifications and the subscriptions that deliver them.
type ENTopic struct {
	ID, Name      string
	Rules         []ENRule
	Subscriptions []ENSubscription
}

// ENRule is one rule of a topic, for one source.
type ENRule struct {
	SourceID           string
	Enabled            bool
	EventTypeFilter    string
	NotificationFilter string
	// Schedule is the cron expression of a periodic-timer rule.
	Schedule string
}

// ENSubscription joins a topic to a destination.
type ENSubscription struct {
	ID, Name        string
	DestinationID   string
	DestinationType string
	// Invited and Subscribed are an email subscription's addresses.
	Invited, Subscribed []string
}

// ENDestination is where notifications go.
type ENDestination struct {
	ID, Name string
	// Type is e.g. ibmce, smtp_ibm, slack, webhook, pagerduty.
	Type string
	// For ibmce: CEType is "application" (URL) or "job" (JobName).
	CEType  string
	URL     string
	JobName string
}

// Jobs is the Code Engine project and its runner job.
type Jobs interface {
	// Job looks up the runner job; an error wrapping ErrNotFound when it does not exist.
	Job(ctx context.Context) (Job, error)
	// RunEvent creates a job run of the runner job named name (a Code Engine name) carrying p
	// in ibmendata, as the scheduler starts backups. A job run of that name that exists already
	// counts as created.
	RunEvent(ctx context.Context, name string, p events.Payload) error
}

// Job is a Code Engine job.
type Job struct {
	Name, Project, Image string
}

// Db2 lists the backups of a Db2 on Cloud instance.
type Db2 interface {
	// Backups returns how many backups the instance lists.
	Backups(ctx context.Context, instanceCRN string) (int, error)
}

// Deployment is what a preflight checks. Fleet, Objects and Publisher are required; every other
// client may be nil, which skips the checks that need it with the reason.
type Deployment struct {
	// Fleet is the fleet policy, as the functions read it.
	Fleet config.Source
	// Credentials obtains the identity's IAM token; nil skips the check (HMAC keys only).
	Credentials Credentials
	// Objects is the bucket under the deployment's prefix; BucketName names it in the report.
	Objects    Objects
	BucketName string
	Bucket     Bucket
	// BucketConfig reads the bucket's configuration (an operator may; a function's custom role
	// may not, which the least-privilege probe takes as proof enough).
	BucketConfig BucketConfig
	// Operator says the identity is an operator's, not a function's: one that may change the
	// bucket's configuration is then not a failure (the functions' own identities are probed
	// by the scheduler's preflight at start).
	Operator bool
	// CanDelete says whether the identity is meant to delete objects (an operator, or the
	// completion function); the round trip then expects its delete to succeed, else to be refused.
	CanDelete bool
	// COSInstanceCRN names the Object Storage instance, for its authorization to Key Protect.
	COSInstanceCRN string

	Keys           Keys
	Authorizations Authorizations

	// Publisher publishes the probe; SourceID is the API source keyguard publishes under;
	// ENInstanceID names the instance (for the Event Notifications -> Code Engine authorization).
	Publisher    Publisher
	Topology     Topology
	SourceID     string
	ENInstanceID string
	// RequestedBy is who asks (recorded in the probe).
	RequestedBy string

	// Jobs is the Code Engine project's runner job (nil when no project is configured);
	// CEProjectID and RunnerJob name them in the report.
	Jobs        Jobs
	CEProjectID string
	RunnerJob   string
	// Db2 is the Db2 on Cloud API (nil when it is not configured).
	Db2 Db2
	// TestExecutors names executors a local stack provides besides the deployed ones (e.g. the
	// simulated Db2), with a description; a database naming one maps to it.
	TestExecutors map[string]string

	// TickInterval is how often the periodic timer ticks (default 5 minutes): the last tick must
	// be younger than three of them.
	TickInterval time.Duration
	// Clock is the wall clock when nil.
	Clock clock.Clock
}
