package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/shared/check"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/outbox"
	"github.com/keyguard-dev/keyguard/shared/preflight"
	"github.com/keyguard-dev/keyguard/shared/restore"
	"github.com/keyguard-dev/keyguard/shared/runtime"
	"github.com/keyguard-dev/keyguard/shared/secret"
	"github.com/keyguard-dev/keyguard/shared/upload"
)

// app is what every command shares: the environment, the output streams, and how the clients
// are built.
type app struct {
	getenv      func(string) string
	out, errOut io.Writer
	// tty is set when errOut is a terminal, where a progress bar redraws its line.
	tty bool
	// build makes the clients a command needs; opsFromEnv when nil (tests set it).
	build func(need) (*ops, error)
	// preflight builds what keyguard preflight checks; preflightFromEnv when nil.
	preflight func() (preflight.Deployment, error)
}

// need says which clients a command uses. Every command that reads or writes the deployment
// needs the object store; only backup create sends an event.
type need int

const (
	needStore  need = 1 << iota // COS: states, catalog, images, the fleet policy object
	needSender                  // Event Notifications
	needKeys                    // Key Protect, when configured (check asks it; optional)
)

// ops returns the clients for a command that needs n.
func (a *app) ops(n need) (*ops, error) {
	if a.build != nil {
		return a.build(n)
	}
	o, err := opsFromEnv(a.getenv, n)
	if err != nil {
		return nil, err
	}
	o.out, o.errOut, o.tty = a.out, a.errOut, a.tty
	return o, nil
}

// ops carries the clients and settings the commands use. Production builds it from the
// environment (opsFromEnv); tests fill the fields.
type ops struct {
	objs     objstore.Store
	fleet    config.Source
	sender   outbox.Sender      // nil unless the command sends
	keys     check.Keys         // nil unless Key Protect is configured and the command asks it
	download restore.Downloader // image files
	out      io.Writer          // results
	errOut   io.Writer          // progress
	tty      bool
	now      func() time.Time
	newID    func() string // a random token per request
	user     string        // who asks, for BackupRequested.RequestedBy
	// pollEvery is how often backup create -wait reads the state; sleep waits (tests fake it).
	pollEvery time.Duration
	sleep     func(ctx context.Context, d time.Duration) error
	// Where the fleet policy is, for messages and fleet push.
	bucket, fleetKey, fleetFile string
}

// opsFromEnv builds ops from the environment (see rootLong): only what n needs is required.
func opsFromEnv(getenv func(string) string, n need) (*ops, error) {
	c, err := loadEnv(getenv, n)
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	client, err := c.COSClient()
	if err != nil {
		return nil, fmt.Errorf("object storage (%s): %w", config.EnvCOSEndpoint, err)
	}
	objs := objstore.NewCOS(client, c.COSBucket, c.COSPrefix)
	fleet, err := c.Fleet(objs)
	if err != nil {
		return nil, err
	}
	down, err := upload.New(client, c.COSBucket, c.COSPrefix, upload.Options{Logger: quiet, ProgressEvery: -1})
	if err != nil {
		return nil, err
	}
	o := &ops{objs: objs, download: down, now: func() time.Time { return time.Now().UTC() }, newID: randomID,
		user: orText(getenv("USER"), "operator"), pollEvery: 2 * time.Second, sleep: sleepCtx,
		bucket: c.COSBucket, fleetKey: c.FleetKey, fleetFile: c.FleetFile}
	o.fleet = policySource{src: fleet, o: o}
	if n&needKeys != 0 && c.KPURL != "" {
		kp, err := c.Keys()
		if err != nil {
			return nil, fmt.Errorf("key protect (%s): %w", config.EnvKPURL, err)
		}
		o.keys = kp
	}
	if n&needSender != 0 {
		c.Function = "cli" // the CloudEvents source: keyguard/cli
		send, err := c.Sender(quiet)
		if err != nil {
			return nil, fmt.Errorf("event notifications (%s): %w", config.EnvENURL, err)
		}
		o.sender = send
	}
	return o, nil
}

// loadEnv reads the variables of rootLong. Unlike a function's configuration, only what the
// command needs is required: the object store always; Event Notifications, and an API key or a
// trusted profile for it, only to send.
func loadEnv(getenv func(string) string, n need) (runtime.Config, error) {
	c := runtime.Config{
		Function: "cli", IAMURL: strings.TrimRight(getenv(config.EnvIAMURL), "/"), APIKey: secret.New(getenv(config.EnvAPIKey)),
		TrustedProfile: getenv(config.EnvTrustedProfile),
		COSEndpoint:    getenv(config.EnvCOSEndpoint), COSRegion: getenv(config.EnvCOSRegion), COSBucket: getenv(config.EnvCOSBucket),
		COSPrefix: getenv(config.EnvCOSPrefix), COSInstanceCRN: getenv(config.EnvCOSInstanceCRN),
		COSHMACKey: getenv(config.EnvCOSHMACKey), COSHMACSecret: secret.New(getenv(config.EnvCOSHMACSecret)),
		ENURL: getenv(config.EnvENURL), ENInstanceID: getenv(config.EnvENInstanceID), ENSourceID: getenv(config.EnvENSourceID),
		FleetFile: getenv(config.EnvFleetFile), FleetKey: getenv(config.EnvFleetKey),
		KPURL: getenv(config.EnvKPURL), KPInstanceID: getenv(config.EnvKPInstanceID),
	}
	if c.IAMURL == "" {
		c.IAMURL = runtime.DefaultIAMURL
	}
	if c.FleetKey == "" {
		c.FleetKey = defaultFleetKey
	}
	var p []string
	need := func(name, v, what string) {
		if v == "" {
			p = append(p, fmt.Sprintf("%s is required (%s)", name, what))
		}
	}
	need(config.EnvCOSEndpoint, c.COSEndpoint, "the Cloud Object Storage endpoint URL")
	need(config.EnvCOSBucket, c.COSBucket, "the bucket keyguard keeps its state and catalog in")
	iam := false
	switch {
	case c.COSHMACKey != "" || c.COSHMACSecret.IsSet():
		if c.COSHMACKey == "" || !c.COSHMACSecret.IsSet() {
			p = append(p, "set both "+config.EnvCOSHMACKey+" and "+config.EnvCOSHMACSecret)
		}
	case c.COSInstanceCRN != "":
		iam = true
	default:
		p = append(p, "set "+config.EnvCOSHMACKey+" and "+config.EnvCOSHMACSecret+" (HMAC keys), or "+config.EnvCOSInstanceCRN+" (IAM)")
	}
	if n&needSender != 0 {
		need(config.EnvENURL, c.ENURL, "Event Notifications, to send the request")
		need(config.EnvENInstanceID, c.ENInstanceID, "the Event Notifications instance")
		need(config.EnvENSourceID, c.ENSourceID, "the API source keyguard publishes under")
		iam = true
	}
	if n&needKeys != 0 && (c.KPURL == "") != (c.KPInstanceID == "") {
		p = append(p, "set both "+config.EnvKPURL+" and "+config.EnvKPInstanceID+", or neither")
	}
	if n&needKeys != 0 && c.KPURL != "" {
		iam = true
	}
	if iam && !c.APIKey.IsSet() && c.TrustedProfile == "" {
		p = append(p, "set "+config.EnvAPIKey+" (an IBM Cloud API key) or "+config.EnvTrustedProfile)
	}
	if len(p) > 0 {
		return c, fmt.Errorf("the environment does not say where the deployment is:\n  - %s\n"+
			"(keyguard --help lists the variables; against the local stack, paste the export lines `make serve` prints)", strings.Join(p, "\n  - "))
	}
	return c, nil
}

const defaultFleetKey = "config/fleet.yaml"

// policySource is the fleet policy source with an error that says what to do when the policy
// object is missing (instead of the store's 404).
type policySource struct {
	src config.Source
	o   *ops
}

func (s policySource) Fleet(ctx context.Context) (*config.Fleet, error) {
	f, err := s.src.Fleet(ctx)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, fmt.Errorf("no fleet policy at %s in bucket %s (%s, default %s): upload one with `keyguard fleet push FILE`, or set %s to a local copy",
			s.o.fleetKey, s.o.bucket, config.EnvFleetKey, defaultFleetKey, config.EnvFleetFile)
	}
	return f, err
}

// randomID returns a token no other request uses.
func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
