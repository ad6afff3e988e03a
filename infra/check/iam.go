package check

import (
	"fmt"
	"sort"
	"strings"

	"github.com/zclconf/go-cty/cty"
)

// IAM policy resource types. Access policies grant an identity roles on resources;
// authorizations grant a service instance roles on another.
const (
	typeAuthorization = "ibm_iam_authorization_policy"
	typeProfile       = "ibm_iam_trusted_profile"
	typeProfileLink   = "ibm_iam_trusted_profile_link"
	typeProfilePolicy = "ibm_iam_trusted_profile_policy"
)

var accessPolicyTypes = []string{typeProfilePolicy, "ibm_iam_service_policy", "ibm_iam_user_policy", "ibm_iam_access_group_policy"}

// forbiddenRoles are never granted: keyguard needs nothing above Writer / Operator.
var forbiddenRoles = map[string]bool{"manager": true, "administrator": true}

// grant is one evaluated policy: service, roles, and whether it is scoped to an instance.
type grant struct {
	Addr         string
	Policy       *Instance
	Service      string
	Roles        []string
	Instance     cty.Value // resource_instance_id or serviceInstance
	Bucket       string    // resource (when resourceType is bucket)
	ResourceType string    // resource_type or resourceType
	Resource     string    // resource
}

// IAM checks every IAM policy for forbidden roles, for a scope narrower than a whole service
// and for role names IAM defines, and checks the service-to-service authorizations keyguard
// needs. What each function's trusted profile holds is Access's business.
func IAM(e *Eval) []string {
	var p []string
	for _, typ := range accessPolicyTypes {
		for _, i := range e.Resources(typ) {
			_, probs := accessPolicy(i)
			p = append(p, probs...)
		}
	}
	var auths []authorization
	for _, i := range e.Resources(typeAuthorization) {
		a, probs := authorizationPolicy(i)
		p = append(p, probs...)
		auths = append(auths, a)
	}
	p = append(p, requiredAuthorizations(e, auths)...)
	p = append(p, Roles(e)...)
	return p
}

func rolesOf(i *Instance) ([]string, []string) {
	v, err := i.Value("roles")
	if err != nil {
		return nil, []string{err.Error()}
	}
	roles, ok := stringList(v)
	if !ok || len(roles) == 0 {
		return nil, []string{i.Addr() + ": roles must be a known, non-empty list"}
	}
	var p []string
	for _, r := range roles {
		if forbiddenRoles[strings.ToLower(r)] {
			p = append(p, fmt.Sprintf("%s: grants %q; keyguard needs no role above Writer/Operator", i.Addr(), r))
		}
	}
	return roles, p
}

// scoped reports whether v names one thing: not null, not empty, no wildcard.
func scoped(v cty.Value) bool {
	if v == cty.NilVal || v.IsNull() {
		return false
	}
	if !v.IsKnown() {
		return true
	}
	s, ok := knownString(v)
	return ok && s != "" && !strings.Contains(s, "*")
}

func accessPolicy(i *Instance) ([]grant, []string) {
	roles, p := rolesOf(i)
	if am, _ := i.Value("account_management"); !am.IsNull() {
		if b, ok := knownBool(am); !ok || b {
			p = append(p, i.Addr()+": account_management grants every account management service")
		}
	}
	resources, err := i.Blocks("resources")
	if err != nil {
		return nil, append(p, err.Error())
	}
	attrs, err := i.Blocks("resource_attributes")
	if err != nil {
		return nil, append(p, err.Error())
	}
	if len(resources) == 0 && len(attrs) == 0 {
		return nil, append(p, i.Addr()+": no resources: the policy would cover every service")
	}
	var grants []grant
	for _, rb := range resources {
		g := grant{Addr: i.Addr(), Policy: i, Roles: roles}
		sv, _ := rb.Value("service")
		g.Service, _ = knownString(sv)
		if g.Service == "" {
			p = append(p, rb.Where+": service must be named")
		}
		if st, _ := rb.Value("service_type"); !st.IsNull() {
			p = append(p, rb.Where+": service_type covers a whole class of services")
		}
		g.Instance, _ = rb.Value("resource_instance_id")
		if !scoped(g.Instance) {
			p = append(p, rb.Where+": resource_instance_id must name one instance (no wildcard)")
		}
		if attrs, _ := rb.Value("attributes"); !attrs.IsNull() && attrs.IsKnown() && attrs.CanIterateElements() {
			for it := attrs.ElementIterator(); it.Next(); {
				_, v := it.Element()
				if !scoped(v) {
					p = append(p, rb.Where+": attributes must not hold wildcards")
				}
			}
		}
		rt, _ := rb.Value("resource_type")
		res, _ := rb.Value("resource")
		p = append(p, bucketScope(rb.Where, g.Service, rt, res)...)
		g.Bucket, _ = knownString(res)
		g.ResourceType, _ = knownString(rt)
		g.Resource = g.Bucket
		grants = append(grants, g)
	}
	if len(attrs) > 0 {
		g := grant{Addr: i.Addr(), Policy: i, Roles: roles, Instance: cty.NilVal}
		byName := map[string]cty.Value{}
		for _, ab := range attrs {
			n, _ := ab.Value("name")
			v, _ := ab.Value("value")
			name, _ := knownString(n)
			byName[name] = v
			if op, _ := ab.Value("operator"); !op.IsNull() && !isString(op, "stringEquals") {
				p = append(p, ab.Where+": operator must be stringEquals (no pattern matching)")
			}
			if !scoped(v) {
				p = append(p, fmt.Sprintf("%s: %s must name one thing (no wildcard)", ab.Where, name))
			}
		}
		g.Service, _ = knownString(byName["serviceName"])
		g.Instance = byName["serviceInstance"]
		if g.Service == "" || !scoped(g.Instance) {
			p = append(p, i.Addr()+": resource_attributes must name serviceName and serviceInstance")
		}
		p = append(p, bucketScope(i.Addr(), g.Service, byName["resourceType"], byName["resource"])...)
		g.Bucket, _ = knownString(byName["resource"])
		g.ResourceType, _ = knownString(byName["resourceType"])
		g.Resource = g.Bucket
		grants = append(grants, g)
	}
	return grants, p
}

// bucketScope requires a COS grant to name one bucket.
func bucketScope(where, service string, resourceType, resource cty.Value) []string {
	if service != "cloud-object-storage" {
		return nil
	}
	if !isString(resourceType, "bucket") || !scoped(resource) {
		return []string{where + ": a cloud-object-storage grant must be scoped to one bucket (resource_type bucket, resource <name>)"}
	}
	return nil
}

type authorization struct {
	Addr            string
	Source, Target  string
	SourceInstance  cty.Value
	TargetInstance  cty.Value
	Roles           []string
	TargetAttrs     map[string]cty.Value
	SourceAttrsUsed bool
}

func authorizationPolicy(i *Instance) (authorization, []string) {
	roles, p := rolesOf(i)
	a := authorization{Addr: i.Addr(), Roles: roles, TargetAttrs: map[string]cty.Value{}}
	get := func(n string) cty.Value { v, _ := i.Value(n); return v }
	a.Source, _ = knownString(get("source_service_name"))
	a.Target, _ = knownString(get("target_service_name"))
	a.SourceInstance = get("source_resource_instance_id")
	a.TargetInstance = get("target_resource_instance_id")

	attrBlocks := func(typ string) map[string]cty.Value {
		blocks, err := i.Blocks(typ)
		if err != nil {
			p = append(p, err.Error())
		}
		out := map[string]cty.Value{}
		for _, b := range blocks {
			n, _ := b.Value("name")
			v, _ := b.Value("value")
			name, _ := knownString(n)
			out[name] = v
			if op, _ := b.Value("operator"); !op.IsNull() && !isString(op, "stringEquals") {
				p = append(p, b.Where+": operator must be stringEquals (no pattern matching)")
			}
			if !scoped(v) {
				p = append(p, fmt.Sprintf("%s: %s must name one thing (no wildcard)", b.Where, name))
			}
		}
		return out
	}
	if subj := attrBlocks("subject_attributes"); len(subj) > 0 {
		a.Source, _ = knownString(subj["serviceName"])
		a.SourceInstance = subj["serviceInstance"]
	}
	if res := attrBlocks("resource_attributes"); len(res) > 0 {
		a.Target, _ = knownString(res["serviceName"])
		a.TargetInstance = res["serviceInstance"]
		a.TargetAttrs = res
	}
	if a.Source == "" || !scoped(a.SourceInstance) {
		p = append(p, i.Addr()+": the source must be one named service instance")
	}
	if a.Target == "" || !scoped(a.TargetInstance) {
		p = append(p, i.Addr()+": the target must be one named service instance")
	}
	if a.Target == "cloud-object-storage" {
		p = append(p, bucketScope(i.Addr(), a.Target, a.TargetAttrs["resourceType"], a.TargetAttrs["resource"])...)
	}
	return a, p
}

func mustValue(n Node, attr string) cty.Value {
	v, err := n.Value(attr)
	if err != nil {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	return v
}

// requiredAuthorizations checks the service-to-service authorizations keyguard relies on.
func requiredAuthorizations(e *Eval, auths []authorization) []string {
	var p []string
	has := func(src, dst string, roles ...string) int {
		n := 0
		for _, a := range auths {
			if a.Source == src && a.Target == dst && sameSet(a.Roles, roles) {
				n++
			}
		}
		return n
	}
	if has("cloud-object-storage", "kms", "Reader") != 1 {
		p = append(p, "want one cloud-object-storage -> kms Reader authorization (bucket encryption)")
	}
	if has("event-notifications", "codeengine", "Viewer", "Writer") != 1 {
		p = append(p, "want one event-notifications -> codeengine Viewer+Writer authorization (deliveries)")
	}
	logs := 0
	if v := e.Var("cloud_logs_instance_crn"); !v.IsNull() {
		logs = 1
	}
	if n := has("logs", "event-notifications", "Event Source Manager"); n != logs {
		p = append(p, fmt.Sprintf("want %d logs -> event-notifications Event Source Manager authorization(s), found %d", logs, n))
	}
	db2 := 0
	if create, ok := knownBool(e.Var("create_db2_kms_authorization")); ok && create {
		if v := e.Var("db2_instance_crns"); !v.IsNull() && v.IsKnown() {
			db2 = v.LengthInt()
		}
	}
	if n := has("dashdb-for-transactions", "kms", "Reader"); n != db2 {
		p = append(p, fmt.Sprintf("want %d dashdb-for-transactions -> kms Reader authorization(s), found %d", db2, n))
	}
	archive := 0
	if days, err := knownInt(e.Var("archive_lock_days")); err == nil && days > 0 {
		archive = 1
	}
	if n := has("cloud-object-storage", "cloud-object-storage", RoleObjectWriter); n != archive {
		p = append(p, fmt.Sprintf("want %d cloud-object-storage -> cloud-object-storage Object Writer authorization(s) (replication to the archive), found %d", archive, n))
	}
	failed := 0
	if on, ok := knownBool(e.Var("collect_failed_events")); ok && on {
		failed = 1
	}
	if n := has("event-notifications", "cloud-object-storage", RoleObjectWriter, RoleReader); n != failed {
		p = append(p, fmt.Sprintf("want %d event-notifications -> cloud-object-storage Object Writer+Reader authorization(s) (failed-event collection needs both), found %d", failed, n))
	}
	return p
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	x, y := append([]string{}, a...), append([]string{}, b...)
	sort.Strings(x)
	sort.Strings(y)
	return strings.Join(x, "\x00") == strings.Join(y, "\x00")
}
