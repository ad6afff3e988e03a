package iampolicy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/IBM/go-sdk-core/v5/core"
	"github.com/IBM/platform-services-go-sdk/iampolicymanagementv1"

	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/preflight"
)

// DefaultURL is IBM Cloud IAM's policy management endpoint.
const DefaultURL = iampolicymanagementv1.DefaultServiceURL

// maxPages bounds a listing (100 policies a page).
const maxPages = 100

// Client lists authorization policies. It is safe for concurrent use.
type Client struct {
	svc     *iampolicymanagementv1.IamPolicyManagementV1
	timeout time.Duration
}

var _ preflight.Authorizations = (*Client)(nil)

// New returns a Client on url (DefaultURL when empty) authenticated by auth. Each call is
// bounded by timeout (10 s when zero). It contacts nothing.
func New(url string, auth core.Authenticator, timeout time.Duration) (*Client, error) {
	if url == "" {
		url = DefaultURL
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	svc, err := iampolicymanagementv1.NewIamPolicyManagementV1(&iampolicymanagementv1.IamPolicyManagementV1Options{URL: url, Authenticator: auth})
	if err != nil {
		return nil, fmt.Errorf("iampolicy: %w", err)
	}
	return &Client{svc: svc, timeout: timeout}, nil
}

// Authorizations returns the active authorization policies of account, every page.
func (c *Client) Authorizations(ctx context.Context, account string) ([]preflight.Authorization, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var out []preflight.Authorization
	var start *string
	for range maxPages {
		coll, resp, err := c.svc.ListPoliciesWithContext(ctx, &iampolicymanagementv1.ListPoliciesOptions{
			AccountID: core.StringPtr(account), Type: core.StringPtr("authorization"), State: core.StringPtr("active"),
			Limit: core.Int64Ptr(100), Start: start,
		})
		if err != nil {
			return nil, classify(resp, err)
		}
		for _, p := range coll.Policies {
			out = append(out, convert(p))
		}
		start = nextStart(coll.Next)
		if start == nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("iampolicy: more than %d pages of authorizations", maxPages)
}

// nextStart reads the page token of the next page from its link (nil on the last page).
func nextStart(n *iampolicymanagementv1.Next) *string {
	if n == nil {
		return nil
	}
	if n.Start != nil && *n.Start != "" {
		return n.Start
	}
	if n.Href != nil {
		if u, err := url.Parse(*n.Href); err == nil {
			if s := u.Query().Get("start"); s != "" {
				return &s
			}
		}
	}
	return nil
}

// convert reads a policy's subject and resource attributes.
func convert(p iampolicymanagementv1.PolicyTemplateMetaData) preflight.Authorization {
	a := preflight.Authorization{ID: str(p.ID)}
	for _, s := range p.Subjects {
		for _, at := range s.Attributes {
			switch str(at.Name) {
			case "serviceName":
				a.Source = str(at.Value)
			case "serviceInstance":
				a.SourceInstance = str(at.Value)
			}
		}
	}
	for _, r := range p.Resources {
		for _, at := range r.Attributes {
			switch str(at.Name) {
			case "serviceName":
				a.Target = str(at.Value)
			case "serviceInstance":
				a.TargetInstance = str(at.Value)
			}
		}
	}
	for _, r := range p.Roles {
		if n := str(r.DisplayName); n != "" {
			a.Roles = append(a.Roles, n)
		}
		if id := str(r.RoleID); id != "" {
			a.Roles = append(a.Roles, id)
		}
	}
	return a
}

// Error is a failed look-up; its kind is configuration for a refusal (401, 403).
type Error struct {
	StatusCode int
	Err        error
}

func (e *Error) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("list authorization policies: status %d: %v", e.StatusCode, e.Err)
	}
	return fmt.Sprintf("list authorization policies: %v", e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Kind says whether trying again may help.
func (e *Error) Kind() errkind.Kind {
	switch {
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		return errkind.Configuration
	case e.StatusCode == 0 || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500:
		return errkind.Transient
	}
	return errkind.Permanent
}

func classify(resp *core.DetailedResponse, err error) error {
	code := 0
	if resp != nil {
		code = resp.StatusCode
	}
	var ae *core.AuthenticationError
	if code == 0 && errors.As(err, &ae) && ae.Response != nil {
		code = ae.Response.StatusCode
	}
	return &Error{StatusCode: code, Err: err}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}
