package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"

	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/notify"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/secret"
)

// Config is a function's deployment configuration.
type Config struct {
	Function       string
	Port           string
	Token          secret.Secret
	LogLevel       slog.Level
	IAMURL         string
	APIKey         secret.Secret
	TrustedProfile string
	COSEndpoint    string
	COSRegion      string
	COSBucket      string
	COSPrefix      string
	COSInstanceCRN string
	COSHMACKey     string
	COSHMACSecret  secret.Secret
	ENURL          string
	ENInstanceID   string
	ENSourceID     string
	FleetFile      string
	FleetKey       string
	KPURL          string
	KPInstanceID   string
	CEProjectID    string
	CERegion       string
	CERunnerJob    string
	Db2SaaSURL     string
}

// DefaultIAMURL is IBM Cloud's IAM.
const DefaultIAMURL = "https://iam.cloud.ibm.com"

// Load reads the variables config.FunctionEnv lists for fn (plus PORT) and checks them; the
// error lists every problem.
func Load(fn string, getenv func(string) string) (Config, error) {
	getenv = only(fn, getenv)
	c := Config{
		Function: fn, Port: getenv(config.EnvPort), Token: secret.New(getenv(config.EnvAuthToken)),
		IAMURL: strings.TrimRight(getenv(config.EnvIAMURL), "/"), APIKey: secret.New(getenv(config.EnvAPIKey)),
		TrustedProfile: getenv(config.EnvTrustedProfile),
		COSEndpoint:    getenv(config.EnvCOSEndpoint), COSRegion: getenv(config.EnvCOSRegion), COSBucket: getenv(config.EnvCOSBucket),
		COSPrefix: getenv(config.EnvCOSPrefix), COSInstanceCRN: getenv(config.EnvCOSInstanceCRN),
		COSHMACKey: getenv(config.EnvCOSHMACKey), COSHMACSecret: secret.New(getenv(config.EnvCOSHMACSecret)),
		ENURL: getenv(config.EnvENURL), ENInstanceID: getenv(config.EnvENInstanceID), ENSourceID: getenv(config.EnvENSourceID),
		FleetFile: getenv(config.EnvFleetFile), FleetKey: getenv(config.EnvFleetKey),
		KPURL: getenv(config.EnvKPURL), KPInstanceID: getenv(config.EnvKPInstanceID),
		CEProjectID: getenv(config.EnvCEProjectID), CERegion: getenv(config.EnvCERegion), CERunnerJob: getenv(config.EnvCERunnerJob),
		Db2SaaSURL: getenv(config.EnvDb2SaaSURL),
	}
	var p []string
	if c.Port == "" {
		c.Port = "8080"
	}
	if c.IAMURL == "" {
		c.IAMURL = DefaultIAMURL
	}
	if c.FleetKey == "" {
		c.FleetKey = "config/fleet.yaml"
	}
	if lv := getenv(config.EnvLogLevel); lv != "" {
		if err := c.LogLevel.UnmarshalText([]byte(lv)); err != nil {
			p = append(p, fmt.Sprintf("%s: %v", config.EnvLogLevel, err))
		}
	}
	serves := slices.Contains(config.Apps, fn)
	switch {
	case serves && !c.Token.IsSet():
		p = append(p, config.EnvAuthToken+" is required (the bearer secret every request must carry)")
	case serves && len(c.Token.Reveal()) < 16:
		p = append(p, config.EnvAuthToken+" must be at least 16 characters")
	}
	if (c.KPURL == "") != (c.KPInstanceID == "") {
		p = append(p, "set both "+config.EnvKPURL+" and "+config.EnvKPInstanceID+", or neither")
	}
	if c.CEProjectID != "" && (c.CERegion == "" || c.CERunnerJob == "") {
		p = append(p, config.EnvCEProjectID+" needs "+config.EnvCERegion+" and "+config.EnvCERunnerJob)
	}
	if !c.APIKey.IsSet() && c.TrustedProfile == "" {
		p = append(p, "set "+config.EnvAPIKey+" or "+config.EnvTrustedProfile)
	}
	for name, v := range map[string]string{config.EnvCOSEndpoint: c.COSEndpoint, config.EnvCOSBucket: c.COSBucket,
		config.EnvENURL: c.ENURL, config.EnvENInstanceID: c.ENInstanceID, config.EnvENSourceID: c.ENSourceID} {
		if v == "" {
			p = append(p, name+" is required")
		}
	}
	if c.COSHMACKey == "" && c.COSInstanceCRN == "" {
		p = append(p, "set "+config.EnvCOSInstanceCRN+" (IAM) or "+config.EnvCOSHMACKey+" and "+config.EnvCOSHMACSecret)
	}
	if len(p) > 0 {
		return c, fmt.Errorf("configuration:\n  - %s", strings.Join(p, "\n  - "))
	}
	return c, nil
}

// Authenticator returns the IAM authenticator: an API key, or the Code Engine trusted profile.
func (c Config) Authenticator() (core.Authenticator, error) {
	if c.APIKey.IsSet() {
		return notify.NewIAMAuthenticator(c.APIKey.Reveal(), c.IAMURL)
	}
	a, err := core.NewContainerAuthenticatorBuilder().SetIAMProfileName(c.TrustedProfile).SetURL(c.IAMURL).Build()
	if err != nil {
		return nil, fmt.Errorf("trusted profile authenticator: %w", err)
	}
	return a, nil
}

// COSClient builds the COS S3 client.
func (c Config) COSClient() (*s3.S3, error) {
	o := objstore.Options{Endpoint: c.COSEndpoint, Region: c.COSRegion}
	if c.COSHMACKey != "" {
		o.HMACKeyID, o.HMACSecret = c.COSHMACKey, c.COSHMACSecret.Reveal()
	} else {
		o.IAMTokenURL, o.InstanceCRN = c.IAMURL+"/identity/token", c.COSInstanceCRN
		if c.APIKey.IsSet() {
			o.APIKey = c.APIKey.Reveal()
		} else {
			// The Code Engine trusted profile's token: COS sees the function's own identity.
			auth, err := core.NewContainerAuthenticatorBuilder().SetIAMProfileName(c.TrustedProfile).SetURL(c.IAMURL).Build()
			if err != nil {
				return nil, fmt.Errorf("trusted profile authenticator for COS: %w", err)
			}
			o.Token = func() (string, int64, error) {
				t, err := auth.RequestToken()
				if err != nil {
					return "", 0, err
				}
				return t.AccessToken, t.Expiration, nil
			}
		}
	}
	return objstore.NewCOSClient(o)
}

// Objects builds the COS object store.
func (c Config) Objects() (objstore.Store, error) {
	client, err := c.COSClient()
	if err != nil {
		return nil, err
	}
	return objstore.NewCOS(client, c.COSBucket, c.COSPrefix), nil
}

// Sender builds the Event Notifications client.
func (c Config) Sender(log *slog.Logger) (*notify.Client, error) {
	auth, err := c.Authenticator()
	if err != nil {
		return nil, err
	}
	return notify.New(notify.Options{URL: c.ENURL, InstanceID: c.ENInstanceID, SourceID: c.ENSourceID, Source: "keyguard/" + c.Function,
		Authenticator: auth, Logger: log})
}

// Fleet returns the fleet policy source: the local file when set, else the COS object.
func (c Config) Fleet(objs objstore.Store) (config.Source, error) {
	if c.FleetFile != "" {
		b, err := os.ReadFile(c.FleetFile)
		if err != nil {
			return nil, fmt.Errorf("%s: read the fleet policy: %w", config.EnvFleetFile, err)
		}
		f, err := config.Load(b)
		if err != nil {
			return nil, fmt.Errorf("%s: fleet policy %s: %w", config.EnvFleetFile, c.FleetFile, err)
		}
		return config.Static{F: f}, nil
	}
	return &COSFleet{Objects: objs, Key: c.FleetKey, TTL: time.Minute}, nil
}

// COSFleet reads the fleet policy from COS, re-reading it at most once per TTL. When a re-read
// fails or the new policy is invalid, it keeps serving the last good one and logs why.
type COSFleet struct {
	Objects objstore.Store
	Key     string
	TTL     time.Duration
	Clock   clock.Clock
	Log     *slog.Logger

	mu      sync.Mutex
	fleet   *config.Fleet
	etag    string
	fetched time.Time
}

// Fleet returns the policy.
func (c *COSFleet) Fleet(ctx context.Context) (*config.Fleet, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := clock.Or(c.Clock).Now()
	if c.fleet != nil && now.Sub(c.fetched) < c.TTL {
		return c.fleet, nil
	}
	body, etag, err := c.Objects.Get(ctx, c.Key)
	if err == nil && etag == c.etag && c.fleet != nil {
		c.fetched = now
		return c.fleet, nil
	}
	var f *config.Fleet
	if err == nil {
		f, err = config.Load(body)
	}
	if err != nil {
		if c.fleet != nil {
			if c.Log != nil {
				c.Log.Warn("fleet policy re-read failed; keeping the last good one", "key", c.Key, "err", err)
			}
			c.fetched = now
			return c.fleet, nil
		}
		return nil, fmt.Errorf("fleet policy %s: %w", c.Key, err)
	}
	c.fleet, c.etag, c.fetched = f, etag, now
	return f, nil
}

// Keys builds the Key Protect client, or returns nil when Key Protect is not configured.
func (c Config) Keys() (*keyprotect.Client, error) {
	if c.KPURL == "" {
		return nil, nil
	}
	auth, err := c.Authenticator()
	if err != nil {
		return nil, err
	}
	return keyprotect.New(keyprotect.Options{URL: c.KPURL, InstanceID: c.KPInstanceID, Authenticator: auth})
}

// localOnly are variables any function may read that a deployment does not set: the port (set
// by Code Engine), a local fleet file and HMAC keys (local stacks, S3-compatible servers).
var localOnly = []string{config.EnvPort, config.EnvFleetFile, config.EnvCOSHMACKey, config.EnvCOSHMACSecret}

// only narrows getenv to the variables fn is documented to read (config.FunctionEnv), so that a
// variable the code reads is always one the Terraform sets.
func only(fn string, getenv func(string) string) func(string) string {
	return func(k string) string {
		if slices.Contains(config.FunctionEnv[fn], k) || slices.Contains(localOnly, k) {
			return getenv(k)
		}
		return ""
	}
}
