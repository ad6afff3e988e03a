package preflight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// ProbeEventID is the id the probe of run is published under.
func ProbeEventID(runID string) string { return "preflight/" + runID }

// topology reads the Event Notifications topology once per run (several checks use it).
type topologyOnce struct {
	once sync.Once
	t    ENTopology
	err  error
}

func (p *run) topology(ctx context.Context) (ENTopology, error) {
	t := &p.topo
	t.once.Do(func() { t.t, t.err = p.d.Topology.Topology(ctx) })
	return t.t, t.err
}

func (p *run) source(ctx context.Context) []Result {
	if p.d.Topology == nil {
		return skip("not listed: reading the instance's sources, topics and subscriptions needs an operator's identity (Reader on Event Notifications); the routes are proven by delivery below")
	}
	t, err := p.topology(ctx)
	if err != nil {
		return fail("cannot read the Event Notifications topology: "+err.Error(), "give this identity Reader on the Event Notifications instance, or check KEYGUARD_EN_URL and KEYGUARD_EN_INSTANCE_ID")
	}
	for _, s := range t.Sources {
		if s.ID != p.d.SourceID {
			continue
		}
		if !s.Enabled {
			return fail("the source "+s.Name+" is disabled: every keyguard event is dropped", "enable the source (ibm_en_source.keyguard sets enabled = true)")
		}
		return ok(fmt.Sprintf("%s (%s), enabled; %d topics, %d destinations in the instance", s.Name, s.Type, len(t.Topics), len(t.Destinations)))
	}
	return fail("the instance has no source "+p.d.SourceID+": every notification keyguard sends is refused or dropped",
		"set KEYGUARD_EN_SOURCE_ID to the en_source_id output (terraform output en_source_id)")
}

// probeRoutes are the routes the probe travels: every route that takes events.TypePreflight.
func probeRoutes() []config.Route {
	var out []config.Route
	for _, r := range config.Routes {
		if slices.Contains(r.Types, events.TypePreflight) {
			out = append(out, r)
		}
	}
	return out
}

func routeName(r config.Route) string {
	if r.Kind == "job" {
		return "route " + r.Function + " job"
	}
	return "route " + r.Function + " " + r.Path
}

// routes publishes the probe and reports, per route, whether its function recorded the receipt.
func (p *run) routes(ctx context.Context) []Result {
	routes := probeRoutes()
	published := time.Now()
	err := p.d.Publisher.Send(ctx, ProbeEventID(p.o.RunID), p.probe())
	if err != nil {
		fix := "give this identity Event Notification Publisher on the instance; check KEYGUARD_EN_URL, KEYGUARD_EN_INSTANCE_ID and KEYGUARD_EN_SOURCE_ID"
		out := make([]Result, len(routes))
		for i, r := range routes {
			out[i] = Result{Check: routeName(r), Status: Fail, Detail: "the probe could not be published: " + err.Error(), Fix: fix}
		}
		return out
	}
	want := map[string]time.Duration{}
	for _, r := range routes {
		wait := p.o.AppWait
		if r.Kind == "job" {
			wait = p.o.JobWait
		}
		want[r.Function] = wait
	}
	got := p.awaitReceipts(ctx, published, want)
	var topo *ENTopology
	if p.d.Topology != nil {
		if t, err := p.topology(ctx); err == nil {
			topo = &t
		}
	}
	out := make([]Result, 0, len(routes))
	for _, r := range routes {
		res := Result{Check: routeName(r)}
		via := ""
		var gap string
		if topo != nil {
			via, gap = topo.route(r, p.d.SourceID)
		}
		if rc, ok := got[r.Function]; ok {
			res.Status = OK
			res.Detail = fmt.Sprintf("the probe reached %s", r.Function)
			if rc.Path != "" && rc.Path != "job" {
				res.Detail += " on " + rc.Path
			}
			res.Detail += fmt.Sprintf(" in %s", rc.after.Round(time.Millisecond))
			if via != "" {
				res.Detail += " via " + via
			}
			if r.Kind == "app" && rc.Path != r.Path {
				res.Status = Fail
				res.Detail = fmt.Sprintf("the probe reached %s on %s, not on %s", r.Function, rc.Path, r.Path)
				res.Fix = "point the route's destination at " + r.Path
			}
		} else {
			res.Status = Fail
			res.Detail = fmt.Sprintf("no receipt from %s within %s: Event Notifications did not deliver the probe to it", r.Function, want[r.Function])
			if gap != "" {
				res.Detail += " (" + gap + ")"
			}
			res.Fix = routeFix(r)
		}
		out = append(out, res)
	}
	return out
}

// receipt is a receipt found, with how long after the publication it was found.
type receipt struct {
	Receipt
	after time.Duration
}

// awaitReceipts lists the run's receipts until every function in want has recorded one or its
// wait (from start) has passed.
func (p *run) awaitReceipts(ctx context.Context, start time.Time, want map[string]time.Duration) map[string]receipt {
	got := map[string]receipt{}
	for {
		list, err := p.d.Objects.List(ctx, RunPrefix(p.o.RunID))
		if err == nil {
			for _, o := range list {
				fn := strings.TrimSuffix(strings.TrimPrefix(o.Key, RunPrefix(p.o.RunID)), ".json")
				if _, wanted := want[fn]; !wanted {
					continue
				}
				if _, have := got[fn]; have {
					continue
				}
				body, _, err := p.d.Objects.Get(ctx, o.Key)
				if err != nil {
					continue
				}
				var rc Receipt
				if json.Unmarshal(body, &rc) != nil || rc.RunID != p.o.RunID {
					continue
				}
				got[fn] = receipt{Receipt: rc, after: time.Since(start)}
			}
		}
		waiting := false
		for fn, wait := range want {
			if _, have := got[fn]; !have && time.Since(start) < wait {
				waiting = true
			}
		}
		if !waiting {
			return got
		}
		select {
		case <-ctx.Done():
			return got
		case <-time.After(p.o.Poll):
		}
	}
}

func routeFix(r config.Route) string {
	if r.Kind == "job" {
		return fmt.Sprintf("check the %s topic's rule for %s from keyguard's source, its subscription and the Code Engine job destination (job %s); the Event Notifications -> Code Engine authorization; then `ibmcloud ce jobrun list` for the run it should have started",
			r.Function, events.TypePreflight, r.Function)
	}
	return fmt.Sprintf("check the %s topic's rule for %s from keyguard's source, its subscription, and the destination's URL (the %s app's URL + %s) and bearer header; then the app's logs (`ibmcloud ce app logs --name <prefix>-%s`)",
		r.Function, events.TypePreflight, r.Function, r.Path, r.Function)
}

// route finds the topic and destination that serve r and describes them ("topic -> destination"),
// or says what is missing.
func (t ENTopology) route(r config.Route, sourceID string) (via, gap string) {
	dests := map[string]ENDestination{}
	for _, d := range t.Destinations {
		dests[d.ID] = d
	}
	periodic := map[string]bool{}
	for _, s := range t.Sources {
		if s.Type == "periodic-timer" {
			periodic[s.ID] = true
		}
	}
	admitting := 0
	for _, topic := range t.Topics {
		admits := true
		if r.Periodic {
			admits = slices.ContainsFunc(topic.Rules, func(x ENRule) bool { return x.Enabled && periodic[x.SourceID] && x.Schedule != "" })
		} else {
			for _, typ := range r.Types {
				if !slices.ContainsFunc(topic.Rules, func(x ENRule) bool { return x.Enabled && x.SourceID == sourceID && admitsType(x, typ) }) {
					admits = false
				}
			}
		}
		if !admits {
			continue
		}
		admitting++
		for _, s := range topic.Subscriptions {
			d, ok := dests[s.DestinationID]
			if ok && deliversTo(d, r) {
				return fmt.Sprintf("topic %s -> destination %s", topic.Name, d.Name), ""
			}
		}
	}
	switch {
	case r.Periodic && admitting == 0:
		return "", "no topic has an enabled periodic-timer rule"
	case admitting == 0:
		return "", fmt.Sprintf("no topic has enabled rules from source %s for every type of the route (%s)", sourceID, strings.Join(r.Types, ", "))
	}
	return "", fmt.Sprintf("%d topic(s) admit the route's events, but none has a subscription to a destination delivering to %s", admitting, strings.TrimPrefix(routeName(r), "route "))
}

// admitsType reports whether a rule's event type filter admits typ: $.type == '<typ>' (either
// quote, any spacing), or $.* (everything).
func admitsType(x ENRule, typ string) bool {
	f := strings.Join(strings.Fields(x.EventTypeFilter), "")
	return f == "$.*" || f == "$.type=='"+typ+"'" || f == `$.type=="`+typ+`"`
}

// deliversTo reports whether a Code Engine destination delivers to route r: an application
// destination whose URL path is the route's path and whose host or name names the function, or
// a job destination whose job is the function's.
func deliversTo(d ENDestination, r config.Route) bool {
	if d.Type != "ibmce" {
		return false
	}
	if r.Kind == "job" {
		return d.CEType == "job" && (d.JobName == r.Function || strings.HasSuffix(d.JobName, "-"+r.Function))
	}
	u, err := url.Parse(d.URL)
	if d.CEType != "application" || err != nil || strings.TrimSuffix(u.Path, "/") != r.Path {
		return false
	}
	return strings.Contains(u.Hostname(), r.Function) || strings.Contains(d.Name, r.Function)
}

// tick reports whether ticks reach the scheduler: the topology's periodic route, and the time of
// the last tick the scheduler recorded.
func (p *run) tick(ctx context.Context) []Result {
	r := config.Routes[0]
	for _, x := range config.Routes {
		if x.Periodic {
			r = x
		}
	}
	interval := p.d.TickInterval
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	via := ""
	if p.d.Topology != nil {
		if t, err := p.topology(ctx); err == nil {
			var gap string
			if via, gap = t.route(r, p.d.SourceID); gap != "" {
				return fail("the tick route is not wired: "+gap, "check the tick topic's periodic-timer rule (event_schedule_filter) and its subscription to the scheduler's /tick")
			}
		}
	}
	body, _, err := p.d.Objects.Get(ctx, TickKey)
	if errors.Is(err, objstore.ErrNotFound) {
		return fail("no tick has reached the scheduler (none recorded: the scheduler records one at most hourly, kept a day): backups never start without ticks",
			"a new deployment gets its first tick within the tick interval: run the preflight again after it; otherwise check the tick topic and the scheduler's logs")
	}
	if err != nil {
		return fail("cannot read "+TickKey+": "+err.Error(), "give this identity the custom role `<prefix> objects` on the bucket")
	}
	var t Tick
	if err := json.Unmarshal(body, &t); err != nil {
		return fail("unreadable "+TickKey+": "+err.Error(), "delete it; the next tick writes it again")
	}
	// The scheduler records a tick at most hourly (runtime.TickRecordEvery).
	age, limit := p.clk.Now().Sub(t.At), 3*interval+time.Hour
	if age > limit {
		return fail(fmt.Sprintf("the last tick recorded reached the scheduler %s ago (at %s, type %s); ticks come every %s and are recorded hourly", age.Round(time.Second), t.At.Format(time.RFC3339), t.Type, interval),
			"check the tick topic's periodic-timer rule and subscription, and the scheduler app (`ibmcloud ce app get`, its logs)")
	}
	d := fmt.Sprintf("last tick %s ago (type %s)", age.Round(time.Second), t.Type)
	if via != "" {
		d += " via " + via
	}
	return ok(d)
}

// personal destination types: an alert sent there reaches a person (or a person's tool).
var personal = []string{"smtp_ibm", "smtp_custom", "sms_ibm", "sms_custom", "slack", "msteams", "pagerduty", "servicenow", "webhook"}

// alerts reports whether alerts reach a person: a topic admitting dev.keyguard.alert (of every
// severity, or critical) with a subscription to a personal destination.
func (p *run) alerts(ctx context.Context) []Result {
	if p.d.Topology == nil {
		return skip("not listed: reading subscriptions needs an operator's identity (Reader on Event Notifications)")
	}
	t, err := p.topology(ctx)
	if err != nil {
		return fail("cannot read the Event Notifications topology: "+err.Error(), "give this identity Reader on the Event Notifications instance")
	}
	dests := map[string]ENDestination{}
	for _, d := range t.Destinations {
		dests[d.ID] = d
	}
	var covered, silent []string
	critical := false
	for _, topic := range t.Topics {
		sev := ""
		admits := false
		for _, x := range topic.Rules {
			if x.Enabled && x.SourceID == p.d.SourceID && admitsType(x, events.TypeAlert) {
				admits = true
				sev = severityOf(x.NotificationFilter)
			}
		}
		if !admits {
			continue
		}
		var people, pending []string
		for _, s := range topic.Subscriptions {
			d := dests[s.DestinationID]
			typ := s.DestinationType
			if typ == "" {
				typ = d.Type
			}
			if !slices.Contains(personal, typ) {
				continue
			}
			if strings.HasPrefix(typ, "smtp") && len(s.Subscribed) == 0 {
				// Event Notifications mails only addresses that accepted its invitation.
				pending = append(pending, strings.Join(s.Invited, ", "))
				continue
			}
			people = append(people, typ)
		}
		label := topic.Name
		if sev != "" {
			label += " (" + sev + ")"
		}
		if len(people) == 0 {
			if len(pending) > 0 {
				label += " [email invited, not yet accepted: " + strings.Join(pending, "; ") + "]"
			}
			silent = append(silent, label)
			continue
		}
		covered = append(covered, label+": "+strings.Join(people, ", "))
		if sev == "" || sev == string(events.Critical) {
			critical = true
		}
	}
	fix := "subscribe a person to the alert topics: set alert_email (or alert_slack, alert_webhook, alert_pagerduty) in the module, and accept the email invitation"
	switch {
	case len(covered) == 0 && len(silent) == 0:
		return fail("no topic takes "+events.TypeAlert+": keyguard's alerts reach no one", fix)
	case !critical:
		return fail("no critical alert reaches a person (silent: "+strings.Join(silent, ", ")+")", fix)
	}
	d := strings.Join(covered, "; ")
	if len(silent) > 0 {
		d += "; no one gets " + strings.Join(silent, ", ")
	}
	return ok(d)
}

// severityOf reads the severity a notification filter selects ($.data.severity == 'critical'),
// or "" for none.
func severityOf(filter string) string {
	f := strings.Join(strings.Fields(filter), "")
	for _, s := range []events.Severity{events.Critical, events.Warning, events.Info} {
		if strings.Contains(f, "'"+string(s)+"'") || strings.Contains(f, `"`+string(s)+`"`) {
			return string(s)
		}
	}
	return ""
}
