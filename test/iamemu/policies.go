package iamemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// PoliciesPath is the policy listing of IAM's policy management API (v1).
const PoliciesPath = "/v1/policies"

// Authorization is a service-to-service authorization policy: Source (a service name, and an
// instance GUID or "" for every instance) may use Target with Roles (display names, e.g. Reader).
type Authorization struct {
	ID             string
	Account        string
	Source         string
	SourceInstance string
	Target         string
	TargetInstance string
	Roles          []string
}

// AddAuthorization records a; it returns the policy id.
func (e *Emulator) AddAuthorization(a Authorization) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	if a.ID == "" {
		a.ID = fmt.Sprintf("00000000-0000-4000-8000-%012d", e.seq)
	}
	a.Roles = append([]string(nil), a.Roles...)
	e.policies = append(e.policies, a)
	return a.ID
}

// RemoveAuthorization deletes the policy id; it reports whether it existed.
func (e *Emulator) RemoveAuthorization(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, a := range e.policies {
		if a.ID == id {
			e.policies = append(e.policies[:i], e.policies[i+1:]...)
			return true
		}
	}
	return false
}

// Authorizations returns the recorded policies.
func (e *Emulator) Authorizations() []Authorization {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Authorization(nil), e.policies...)
}

type attr struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Operator string `json:"operator,omitempty"`
}

type policyJSON struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Subjects []struct {
		Attributes []attr `json:"attributes"`
	} `json:"subjects"`
	Roles []struct {
		RoleID      string `json:"role_id"`
		DisplayName string `json:"display_name"`
	} `json:"roles"`
	Resources []struct {
		Attributes []attr `json:"attributes"`
	} `json:"resources"`
	Href      string    `json:"href"`
	CreatedAt time.Time `json:"created_at"`
	State     string    `json:"state"`
}

func (e *Emulator) servePolicies(w http.ResponseWriter, r *http.Request) {
	if !e.Valid(r.Header.Get("Authorization")) {
		iamError(w, http.StatusUnauthorized, "BXNIM0308E", "A valid bearer token is required")
		return
	}
	q := r.URL.Query()
	account := q.Get("account_id")
	if account == "" {
		iamError(w, http.StatusBadRequest, "invalid_parameter", "account_id is required")
		return
	}
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			iamError(w, http.StatusBadRequest, "invalid_parameter", "limit must be 1 to 100")
			return
		}
		limit = n
	}
	start := 0
	if v := q.Get("start"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			iamError(w, http.StatusBadRequest, "invalid_parameter", "start is not a page token of this listing")
			return
		}
		start = n
	}
	var all []policyJSON
	if typ := q.Get("type"); typ == "" || typ == "authorization" {
		for _, a := range e.Authorizations() {
			if a.Account != "" && a.Account != account {
				continue
			}
			all = append(all, render(a, account))
		}
	}
	end := min(start+limit, len(all))
	if start > len(all) {
		start = len(all)
	}
	body := map[string]any{"limit": limit, "first": map[string]string{"href": PoliciesPath + "?account_id=" + account}, "policies": all[start:end]}
	if end < len(all) {
		body["next"] = map[string]string{"href": fmt.Sprintf("%s?account_id=%s&start=%d", PoliciesPath, account, end), "start": strconv.Itoa(end)}
	}
	if all == nil {
		body["policies"] = []policyJSON{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func render(a Authorization, account string) policyJSON {
	p := policyJSON{ID: a.ID, Type: "authorization", Href: PoliciesPath + "/" + a.ID, State: "active", CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	subj := []attr{{Name: "accountId", Value: account}, {Name: "serviceName", Value: a.Source}}
	if a.SourceInstance != "" {
		subj = append(subj, attr{Name: "serviceInstance", Value: a.SourceInstance})
	}
	res := []attr{{Name: "accountId", Value: account, Operator: "stringEquals"}, {Name: "serviceName", Value: a.Target, Operator: "stringEquals"}}
	if a.TargetInstance != "" {
		res = append(res, attr{Name: "serviceInstance", Value: a.TargetInstance, Operator: "stringEquals"})
	}
	p.Subjects = append(p.Subjects, struct {
		Attributes []attr `json:"attributes"`
	}{subj})
	p.Resources = append(p.Resources, struct {
		Attributes []attr `json:"attributes"`
	}{res})
	for _, role := range a.Roles {
		p.Roles = append(p.Roles, struct {
			RoleID      string `json:"role_id"`
			DisplayName string `json:"display_name"`
		}{"crn:v1:bluemix:public:iam::::serviceRole:" + role, role})
	}
	return p
}
