package check

import (
	"fmt"
	"sort"
	"strings"
)

// IAM roles are named by display name in ibm_iam_*_policy resources, and the provider looks
// them up by exact match among the roles of the policy's service (flex.FindRoleByName in
// IBM-Cloud/terraform-provider-ibm ibm/flex/structures.go, v2.5.0): a misspelt role is found
// only at apply, after the resources before it were created. These are the names IAM defines,
// with where each list was read.

// platformRoles are the platform roles every IAM-enabled service has.
var platformRoles = []string{"Viewer", "Operator", "Editor", "Administrator"}

type serviceRoles struct {
	Source string
	Roles  []string // service roles
}

var iamRoles = map[string]serviceRoles{
	"cloud-object-storage": {
		Source: "ibm-cloud-docs/cloud-object-storage iam.md, service access roles (commit c7de9273)",
		Roles:  []string{"Object Writer", "Object Reader", "Content Reader", "Reader", "Writer", "Manager"},
	},
	"event-notifications": {
		// en-iam.md renders the publisher's row heading through a product-name variable
		// ("Event Notifications Publisher") but its action table and terraform-ibm-modules'
		// list of valid roles spell the role itself "Event Notification Publisher".
		Source: "ibm-cloud-docs/event-notifications en-iam.md (commit ba6bbc97); terraform-ibm-modules/terraform-ibm-event-notifications solutions/fully-configurable/variables.tf (commit 9d87dd9)",
		Roles: []string{"Reader", "Writer", "Manager", "Channel Editor", "Service Configuration Reader", "Event Source Manager",
			"Event Notification Publisher", "Device Manager", "Status Reporter", "Email Sender", "Custom Email Status Reporter"},
	},
	"kms": {
		Source: "ibm-cloud-docs/key-protect concepts/manage-access.md (commit c7f4b118)",
		Roles:  []string{"Reader", "ReaderPlus", "Writer", "Manager", "KeyPurge", "KmipAdapterManager"},
	},
	"codeengine": {
		Source: "ibm-cloud-docs/account iam-service-roles-actions.md, Code Engine",
		Roles:  []string{"Reader", "Writer", "Manager", "Compute Environment Administrator", "Service Configuration Reader"},
	},
	"dashdb-for-transactions": {
		Source: "ibm-cloud-docs/account iam-service-roles-actions.md, Db2 on Cloud",
		Roles:  []string{"Manager"},
	},
}

// Role names the checks expect, from the table above.
const (
	RoleReader          = "Reader"
	RoleWriter          = "Writer"
	RoleViewer          = "Viewer"
	RoleOperator        = "Operator"
	RoleObjectWriter    = "Object Writer"
	RoleENPublisher     = "Event Notification Publisher"
	RoleENSourceManager = "Event Source Manager"
)

// Roles checks that every role an access policy or authorization grants is one IAM defines
// for the service it applies to (a platform role, a service role, or a custom role the module
// creates for that service).
func Roles(e *Eval) []string {
	custom := map[string]map[string]bool{} // service -> display names
	for _, r := range e.Resources("ibm_iam_custom_role") {
		svc, _ := knownString(mustValue(r.Node, "service"))
		name, ok := knownString(mustValue(r.Node, "display_name"))
		if !ok {
			continue
		}
		if custom[svc] == nil {
			custom[svc] = map[string]bool{}
		}
		custom[svc][name] = true
	}
	customRole := map[string]string{} // reference to a custom role's display_name -> its value
	for _, r := range e.Resources("ibm_iam_custom_role") {
		if name, ok := knownString(mustValue(r.Node, "display_name")); ok {
			customRole[Ref{Addr: r.Addr(), Attr: "display_name"}.String()] = name
		}
	}
	var p []string
	check := func(addr, service string, roles []string) {
		defined, ok := iamRoles[service]
		if !ok {
			p = append(p, fmt.Sprintf("%s: no recorded IAM roles for service %q", addr, service))
			return
		}
		for _, r := range roles {
			if v, isRef := customRole[r]; isRef {
				r = v
			}
			if containsString(platformRoles, r) || containsString(defined.Roles, r) || custom[service][r] {
				continue
			}
			p = append(p, fmt.Sprintf("%s: %q is not a role IAM defines for %s (roles: %s; from %s)",
				addr, r, service, strings.Join(append(append([]string{}, platformRoles...), defined.Roles...), ", "), defined.Source))
		}
	}
	for _, typ := range accessPolicyTypes {
		for _, i := range e.Resources(typ) {
			grants, _ := accessPolicy(i)
			for _, g := range grants {
				if g.Service != "" {
					check(g.Addr, g.Service, g.Roles)
				}
			}
		}
	}
	for _, i := range e.Resources(typeAuthorization) {
		a, _ := authorizationPolicy(i)
		if a.Target != "" {
			check(a.Addr, a.Target, a.Roles)
		}
	}
	sort.Strings(p)
	return p
}
