package objstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/IBM/ibm-cos-sdk-go/aws"
	"github.com/IBM/ibm-cos-sdk-go/aws/client"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials/ibmiam"
	"github.com/IBM/ibm-cos-sdk-go/aws/credentials/ibmiam/token"
	"github.com/IBM/ibm-cos-sdk-go/aws/request"
	"github.com/IBM/ibm-cos-sdk-go/aws/session"
	"github.com/IBM/ibm-cos-sdk-go/service/s3"
)

// DefaultIAMTokenURL is IBM Cloud IAM's token endpoint.
const DefaultIAMTokenURL = "https://iam.cloud.ibm.com/identity/token"

// DefaultRegion is the signing region used when Options.Region is empty (versitygw's default;
// IBM COS accepts it with HMAC keys).
const DefaultRegion = "us-east-1"

// DefaultMaxRetries is the SDK's retry count per request when Options.MaxRetries is 0.
const DefaultMaxRetries = 2

// Options configure NewCOSClient. Give either HMACKeyID and HMACSecret, or APIKey and
// InstanceCRN. Printing Options (fmt, slog) redacts the secrets.
type Options struct {
	// Endpoint is the S3 endpoint URL, e.g. https://s3.us-south.cloud-object-storage.appdomain.cloud
	// or http://127.0.0.1:7070. Required.
	Endpoint string
	// Region is the signing region; DefaultRegion when empty.
	Region string
	// HMACKeyID and HMACSecret are COS HMAC credentials (secret: never logged).
	HMACKeyID  string
	HMACSecret string
	// APIKey is an IBM Cloud API key (secret: never logged), exchanged for IAM tokens at
	// IAMTokenURL (DefaultIAMTokenURL when empty; the full token URL, ending /identity/token).
	APIKey      string
	IAMTokenURL string
	// InstanceCRN is the COS service instance CRN, sent with IAM tokens. Required with APIKey
	// or Token.
	InstanceCRN string
	// Token, instead of an API key, fetches IAM tokens: a Code Engine trusted profile's
	// (runtime builds it from go-sdk-core's ContainerAuthenticator). It returns the access token
	// and its expiry (unix seconds), and is called again when the token nears its expiry.
	Token func() (accessToken string, expiration int64, err error)
	// HTTPClient is used for every request; a client with bounded dial, TLS and response-header
	// timeouts when nil.
	HTTPClient *http.Client
	// MaxRetries bounds the SDK's retries of one request (throttling, 5xx, broken connections):
	// DefaultMaxRetries when 0, none when negative. Retry delays are capped at 1 s (2 s when
	// throttled) so that a request fits well inside an Event Notifications delivery (10 s).
	MaxRetries int
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// String prints the options with the secrets redacted.
func (o Options) String() string {
	return fmt.Sprintf("{Endpoint:%s Region:%s HMACKeyID:%s HMACSecret:%s APIKey:%s IAMTokenURL:%s InstanceCRN:%s MaxRetries:%d}",
		o.Endpoint, o.Region, o.HMACKeyID, redact(o.HMACSecret), redact(o.APIKey), o.IAMTokenURL, o.InstanceCRN, o.MaxRetries)
}

// GoString is String, so that %#v redacts too.
func (o Options) GoString() string { return "objstore.Options" + o.String() }

// LogValue makes slog print the options with the secrets redacted.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", o.Endpoint), slog.String("region", o.Region),
		slog.String("hmac_key_id", o.HMACKeyID), slog.String("hmac_secret", redact(o.HMACSecret)),
		slog.String("api_key", redact(o.APIKey)), slog.String("iam_token_url", o.IAMTokenURL),
		slog.String("instance_crn", o.InstanceCRN), slog.Int("max_retries", o.MaxRetries))
}

// Validate reports the first problem of o, if any.
func (o Options) Validate() error {
	u, err := url.Parse(o.Endpoint)
	if o.Endpoint == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("cos options: endpoint %q is not an http(s) URL", o.Endpoint)
	}
	hmac := o.HMACKeyID != "" || o.HMACSecret != ""
	switch {
	case (hmac && o.APIKey != "") || (hmac && o.Token != nil) || (o.APIKey != "" && o.Token != nil):
		return errors.New("cos options: give one of HMAC credentials, an API key or a token source")
	case hmac && (o.HMACKeyID == "" || o.HMACSecret == ""):
		return errors.New("cos options: HMAC credentials need both key id and secret")
	case !hmac && o.APIKey == "" && o.Token == nil:
		return errors.New("cos options: no credentials (HMAC key id and secret, an API key, or a token source)")
	case (o.APIKey != "" || o.Token != nil) && o.InstanceCRN == "":
		return errors.New("cos options: IAM credentials need the COS instance CRN")
	}
	if o.IAMTokenURL != "" {
		if u, err := url.Parse(o.IAMTokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("cos options: IAM token URL %q is not an http(s) URL", o.IAMTokenURL)
		}
	}
	return nil
}

// NewCOSClient builds an ibm-cos-sdk-go S3 client from o: path-style addressing, HMAC static
// credentials or IAM (API key) credentials, bounded retries. It does not contact the server.
func NewCOSClient(o Options) (*s3.S3, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	region := o.Region
	if region == "" {
		region = DefaultRegion
	}
	httpClient := o.HTTPClient
	if httpClient == nil {
		httpClient = defaultHTTPClient()
	}
	retries := o.MaxRetries
	switch {
	case retries == 0:
		retries = DefaultMaxRetries
	case retries < 0:
		retries = 0
	}
	cfg := aws.NewConfig().
		WithEndpoint(o.Endpoint).
		WithRegion(region).
		WithS3ForcePathStyle(true).
		WithHTTPClient(httpClient)
	tokenURL := o.IAMTokenURL
	if tokenURL == "" {
		tokenURL = DefaultIAMTokenURL
	}
	switch {
	case o.APIKey != "":
		cfg = cfg.WithCredentials(ibmiam.NewStaticCredentials(aws.NewConfig().WithHTTPClient(httpClient), tokenURL, o.APIKey, o.InstanceCRN))
	case o.Token != nil:
		// The SDK's token manager asks init again whenever a refresh is refused (a trusted
		// profile's token has no refresh token).
		init := func() (*token.Token, error) {
			access, exp, err := o.Token()
			if err != nil {
				return nil, fmt.Errorf("cos: IAM token: %w", err)
			}
			return &token.Token{AccessToken: access, TokenType: "Bearer", Expiration: exp, ExpiresIn: exp - time.Now().Unix()}, nil
		}
		cfg = cfg.WithCredentials(ibmiam.NewCustomInitFuncCredentials(aws.NewConfig().WithHTTPClient(httpClient), init, tokenURL, o.InstanceCRN))
	default:
		cfg = cfg.WithCredentials(credentials.NewStaticCredentials(o.HMACKeyID, o.HMACSecret, ""))
	}
	cfg = request.WithRetryer(cfg, client.DefaultRetryer{
		NumMaxRetries:    retries,
		MinRetryDelay:    20 * time.Millisecond,
		MaxRetryDelay:    time.Second,
		MinThrottleDelay: 100 * time.Millisecond,
		MaxThrottleDelay: 2 * time.Second,
	})
	sess, err := session.NewSession(cfg)
	if err != nil {
		return nil, fmt.Errorf("cos client for %s: %w", o.Endpoint, err)
	}
	return s3.New(sess), nil
}

func defaultHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		ForceAttemptHTTP2:     true,
	}}
}
