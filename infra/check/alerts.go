package check

import (
	"fmt"
	"regexp"
	"sort"

	"github.com/keyguard-dev/keyguard/events"
)

// alertSeverities are the severities of keyguard's alerts (events.Severity).
var alertSeverities = []events.Severity{events.Critical, events.Warning, events.Info}

// alertDestinations are the destination kinds a deployer configures, with their variable, the
// subscription and destination resource types, and the Event Notifications destination type.
var alertDestinations = []struct {
	Variable, Subscription, Destination, Type string
}{
	{"alert_email", "ibm_en_subscription_email", "", "smtp_ibm"},
	{"alert_slack", "ibm_en_subscription_slack", "ibm_en_destination_slack", "slack"},
	{"alert_webhook", "ibm_en_subscription_webhook", "ibm_en_destination_webhook", "webhook"},
	{"alert_pagerduty", "ibm_en_subscription_pagerduty", "ibm_en_destination_pagerduty", "pagerduty"},
}

var severityFilterRE = regexp.MustCompile(`^\$\.data\.severity == '([a-z]+)'$`)

// Alerts checks that keyguard's alerts reach people: for each severity one topic admits exactly
// the alert type from keyguard's source, filtered on data.severity; at least one destination
// is configured; and each configured destination is subscribed to the topic of every severity
// its variable asks for, and to no other.
func Alerts(e *Eval) []string {
	var p []string
	topics := map[string]string{} // severity -> topic address
	for _, t := range e.Resources(typeTopic) {
		srcs, _ := sourcesOf(t)
		sev, alertOnly, seen := "", true, false
		for _, s := range srcs {
			if s.Kind != "keyguard" {
				continue
			}
			for _, r := range s.Rules {
				if m := typeFilterRE.FindStringSubmatch(r.Filter); m == nil || m[1] != events.TypeAlert {
					alertOnly = false
					continue
				}
				seen = true
				nf, _ := knownString(mustValue(ruleNode(t, r), "notification_filter"))
				if m := severityFilterRE.FindStringSubmatch(nf); m != nil {
					sev = m[1]
				} else {
					p = append(p, fmt.Sprintf("%s: an alert rule must filter on one severity ($.data.severity == '<severity>'), not %q", r.Where, nf))
				}
			}
		}
		switch {
		case !seen:
		case !alertOnly:
			p = append(p, t.Addr()+": an alert topic must admit alerts only")
		case sev == "":
		case topics[sev] != "":
			p = append(p, fmt.Sprintf("%s and %s both take %s alerts", topics[sev], t.Addr(), sev))
		default:
			topics[sev] = t.Addr()
		}
	}
	for _, sev := range alertSeverities {
		if topics[string(sev)] == "" {
			p = append(p, fmt.Sprintf("no topic takes %s alerts (%s)", sev, events.TypeAlert))
		}
	}
	configured := 0
	for _, d := range alertDestinations {
		v := e.Var(d.Variable)
		want := map[string]bool{}
		if !v.IsNull() {
			configured++
			sevs, _ := stringList(v.GetAttr("severities"))
			for _, s := range sevs {
				want[s] = true
			}
		}
		got := map[string]bool{}
		for _, s := range e.Resources(d.Subscription) {
			tr, ok := RefOf(mustValue(s.Node, "topic_id"))
			sev := ""
			for k, addr := range topics {
				if ok && tr.Addr == addr && tr.Attr == "topic_id" {
					sev = k
				}
			}
			if sev == "" {
				p = append(p, s.Addr()+": topic_id must be the topic_id of an alert topic")
				continue
			}
			if !destinationIs(e, s, d.Destination, d.Type) {
				p = append(p, fmt.Sprintf("%s: destination_id must be the %s destination", s.Addr(), d.Type))
			}
			got[sev] = true
		}
		for _, sev := range alertSeverities {
			switch s := string(sev); {
			case want[s] && !got[s]:
				p = append(p, fmt.Sprintf("%s asks for %s alerts, but no %s subscribes to that topic", d.Variable, s, d.Subscription))
			case got[s] && !want[s]:
				p = append(p, fmt.Sprintf("a %s subscribes to %s alerts, which %s does not ask for", d.Subscription, s, d.Variable))
			}
		}
	}
	if configured == 0 {
		p = append(p, events.TypeAlert+" reaches no one: configure alert_email, alert_slack, alert_webhook or alert_pagerduty")
	}
	sort.Strings(p)
	return p
}

// ruleNode finds the evaluated rules block a topicRule was read from.
func ruleNode(t *Instance, r topicRule) Node {
	srcs, _ := t.Blocks("sources")
	for _, s := range srcs {
		rules, _ := s.Blocks("rules")
		for _, rn := range rules {
			if rn.Where == r.Where {
				return rn
			}
		}
	}
	return Node{Body: t.Body, Ctx: t.Ctx, Where: r.Where}
}

// destinationIs reports whether a subscription's destination_id is the destination_id of a
// resource of type typ, or, for email, the id of the instance's smtp_ibm destination read
// through the ibm_en_destinations data source.
func destinationIs(e *Eval, sub *Instance, typ, enType string) bool {
	v := mustValue(sub.Node, "destination_id")
	if typ == "" {
		s, ok := knownString(v)
		return ok && s == Ref{Addr: "data.ibm_en_destinations.all[0]", Attr: "destinations[" + enType + "].id"}.String()
	}
	ref, ok := RefOf(v)
	if !ok || ref.Attr != "destination_id" {
		return false
	}
	d := e.Lookup(ref.Addr)
	return d != nil && d.Resource.Type == typ && isString(mustValue(d.Node, "type"), enType)
}
