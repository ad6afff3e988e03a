package check

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

const typeSleep = "time_sleep"

// MinIAMWait is the least time a new service-to-service authorization is given to propagate
// before a resource that needs it is created: what IBM's own modules wait
// (terraform-ibm-modules/terraform-ibm-event-notifications main.tf, for provider issue #4478).
const MinIAMWait = 30 * time.Second

// authorizationNeeds are the resources that fail at creation when the authorization of their
// service to another has not propagated yet: the dependent resource type, and the source and
// target services of the authorization it needs.
var authorizationNeeds = []struct {
	Dependent, Source, Target, Why string
}{
	{typeBucket, "cloud-object-storage", "kms", "a bucket is created with its Key Protect key"},
	{typeDestinationC, "event-notifications", "codeengine", "a Code Engine destination is checked against the project"},
	{"ibm_en_integration_cos", "event-notifications", "cloud-object-storage", "the failed-events integration writes to its bucket"},
	{"ibm_logs_outgoing_webhook", "logs", "event-notifications", "Cloud Logs registers as a source"},
	{"ibm_cos_bucket_replication_rule", "cloud-object-storage", "cloud-object-storage", "replication writes to the target bucket"},
}

// Waits checks that no resource depends on an IAM authorization directly, and that every
// resource needing an authorization to have propagated depends on a time_sleep of at least
// MinIAMWait that follows that authorization.
func Waits(e *Eval) []string {
	var p []string
	m := e.Module
	for _, r := range m.Resources {
		if r.Type == typeSleep {
			continue
		}
		for _, d := range dependencies(m, r) {
			if strings.HasPrefix(d, typeAuthorization+".") {
				p = append(p, fmt.Sprintf("%s depends on %s directly: depend on a time_sleep after it (IAM propagation, provider issue #4478)", r.Addr(), d))
			}
		}
	}
	// The authorizations (source -> target) each time_sleep waits for, and whether it waits long enough.
	follows := map[string][]string{}
	for _, s := range e.Resources(typeSleep) {
		addr := s.Resource.Addr()
		d, err := time.ParseDuration(mustString(s.Node, "create_duration"))
		if err != nil || d < MinIAMWait {
			p = append(p, fmt.Sprintf("%s: create_duration must be a known duration of at least %s", s.Addr(), MinIAMWait))
			continue
		}
		for _, dep := range dependencies(m, s.Resource) {
			for _, a := range e.Instances {
				if a.Resource.Addr() != dep || a.Resource.Type != typeAuthorization {
					continue
				}
				auth, _ := authorizationPolicy(a)
				follows[addr] = append(follows[addr], auth.Source+" -> "+auth.Target)
			}
		}
	}
	for _, need := range authorizationNeeds {
		for _, i := range e.Resources(need.Dependent) {
			waited := false
			for _, d := range dependencies(m, i.Resource) {
				if containsString(follows[d], need.Source+" -> "+need.Target) {
					waited = true
				}
			}
			if !waited {
				p = append(p, fmt.Sprintf("%s is created without waiting for the %s -> %s authorization to propagate (%s): depend on a time_sleep of at least %s after it",
					i.Addr(), need.Source, need.Target, need.Why, MinIAMWait))
			}
		}
	}
	sort.Strings(p)
	return p
}

func mustString(n Node, attr string) string {
	s, _ := knownString(mustValue(n, attr))
	return s
}

// dependencies lists the resources of m (type.name, data.type.name) that r refers to in any
// expression or names in depends_on.
func dependencies(m *Module, r *Resource) []string {
	set := map[string]bool{}
	add := func(t hcl.Traversal) {
		if addr := resourceAddr(t); addr != "" && addr != r.Addr() && m.Resource(addr) != nil {
			set[addr] = true
		}
	}
	_ = hclsyntax.VisitAll(r.Block.Body, func(n hclsyntax.Node) hcl.Diagnostics {
		switch x := n.(type) {
		case *hclsyntax.ScopeTraversalExpr:
			add(x.Traversal)
		case *hclsyntax.Attribute:
			if x.Name == "depends_on" {
				exprs, _ := hcl.ExprList(x.Expr)
				for _, ex := range exprs {
					if t, diags := hcl.AbsTraversalForExpr(ex); !diags.HasErrors() {
						add(t)
					}
				}
			}
		}
		return nil
	})
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// resourceAddr is the resource address a traversal starts with, or "" when it names a
// variable, local, iterator or the like.
func resourceAddr(t hcl.Traversal) string {
	root := t.RootName()
	switch root {
	case "var", "local", "each", "count", "path", "module", "self", "terraform":
		return ""
	}
	name := func(i int) string {
		if i < len(t) {
			if a, ok := t[i].(hcl.TraverseAttr); ok {
				return a.Name
			}
		}
		return ""
	}
	if root == "data" {
		if name(1) == "" || name(2) == "" {
			return ""
		}
		return "data." + name(1) + "." + name(2)
	}
	if name(1) == "" {
		return ""
	}
	return root + "." + name(1)
}
