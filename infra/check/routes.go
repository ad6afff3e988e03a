package check

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/zclconf/go-cty/cty"
)

// topicSource is one source of a topic with its rules.
type topicSource struct {
	ID    cty.Value
	Kind  string // "keyguard", "periodic", "cloud-logs" or "other"
	Rules []topicRule
}

type topicRule struct {
	Where    string
	Enabled  bool
	Filter   string // event_type_filter ("" when not set)
	Schedule string // event_schedule_filter.expression
}

// typeFilterRE is the only event type filter keyguard's own source may use: one exact type.
var typeFilterRE = regexp.MustCompile(`^\$\.type == '([A-Za-z0-9_.:-]+)'$`)

// cloudLogsCRN matches the CRN of an IBM Cloud Logs instance.
var cloudLogsCRN = regexp.MustCompile(`^crn:v1:[^:]+:[^:]+:logs:[^:]+:a/[^:]+:[^:]+::$`)

func sourcesOf(t *Instance) ([]topicSource, []string) {
	var p []string
	blocks, err := t.Blocks("sources")
	if err != nil {
		return nil, []string{err.Error()}
	}
	var out []topicSource
	for _, sb := range blocks {
		id, err := sb.Value("id")
		if err != nil {
			p = append(p, err.Error())
			continue
		}
		src := topicSource{ID: id, Kind: "other"}
		if ref, ok := RefOf(id); ok {
			switch {
			case strings.HasPrefix(ref.Addr, typeSource+".") && ref.Attr == "source_id":
				src.Kind = "keyguard"
			case strings.HasPrefix(ref.Addr, "data."+typeSources+".") && ref.Attr == "sources[periodic-timer].id":
				src.Kind = "periodic"
			}
		} else if s, ok := knownString(id); ok && cloudLogsCRN.MatchString(s) {
			src.Kind = "cloud-logs"
		}
		rules, err := sb.Blocks("rules")
		if err != nil {
			p = append(p, err.Error())
			continue
		}
		for _, rb := range rules {
			r := topicRule{Where: rb.Where, Enabled: true}
			if v, _ := rb.Value("enabled"); !v.IsNull() {
				b, ok := knownBool(v)
				r.Enabled = ok && b
			}
			if v, err := rb.Value("event_type_filter"); err != nil {
				p = append(p, err.Error())
			} else if !v.IsNull() {
				r.Filter, _ = knownString(v)
			}
			sched, err := rb.Blocks("event_schedule_filter")
			if err != nil {
				p = append(p, err.Error())
			}
			for _, s := range sched {
				if v, _ := s.Value("expression"); !v.IsNull() {
					r.Schedule, _ = knownString(v)
				}
			}
			src.Rules = append(src.Rules, r)
		}
		out = append(out, src)
	}
	return out, p
}

// destination is an ibm_en_destination_ce instance and where it delivers.
type destination struct {
	Inst     *Instance
	Kind     string // "app" or "job"
	Function string
	Path     string
	Problems []string // why it is not a valid keyguard delivery
}

func destinationOf(e *Eval, d *Instance) destination {
	out := destination{Inst: d}
	bad := func(format string, args ...any) {
		out.Problems = append(out.Problems, fmt.Sprintf(d.Addr()+": "+format, args...))
	}
	if t, _ := d.Value("type"); !isString(t, "ibmce") {
		bad(`type must be "ibmce"`)
	}
	configs, err := d.Blocks("config")
	if err != nil || len(configs) != 1 {
		bad("needs one config block")
		return out
	}
	params, err := configs[0].Blocks("params")
	if err != nil || len(params) != 1 {
		bad("needs one params block")
		return out
	}
	pb := params[0]
	typ, _ := pb.Value("type")
	switch {
	case isString(typ, "application"):
		out.Kind = "app"
		u, err := pb.Value("url")
		if err != nil {
			bad("%v", err)
			return out
		}
		s, _ := knownString(u)
		ref, rest, ok := ParseRef(s)
		if !ok || ref.Attr != "endpoint" || e.Lookup(ref.Addr) == nil || e.Lookup(ref.Addr).Resource.Type != typeApp {
			bad("url must be an app's endpoint followed by a path, not %q", s)
			return out
		}
		out.Function, out.Path = functionName(e.Lookup(ref.Addr)), rest
		if verb, _ := pb.Value("verb"); !isString(verb, "POST") {
			bad("verb must be POST")
		}
		headers, _ := pb.Value("custom_headers")
		auth, ok := headerValue(headers, "Authorization")
		if !ok || !strings.HasPrefix(auth, "Bearer ") || len(auth) == len("Bearer ") {
			bad(`custom_headers must carry "Authorization: Bearer <shared secret>"`)
		}
		sens, _ := pb.Value("sensitive_headers")
		list, _ := stringList(sens)
		if !containsFold(list, "Authorization") {
			bad("sensitive_headers must list Authorization (the shared secret)")
		}
	case isString(typ, "job"):
		out.Kind = "job"
		jn, _ := pb.Value("job_name")
		ref, ok := RefOf(jn)
		job := (*Instance)(nil)
		if ok && ref.Attr == "name" {
			job = e.Lookup(ref.Addr)
		}
		if job == nil || job.Resource.Type != typeJob {
			bad("job_name must be the name of an %s", typeJob)
			return out
		}
		out.Function = functionName(job)
		pc, _ := pb.Value("project_crn")
		if ref, ok := RefOf(pc); !ok || ref.Attr != "crn" || !strings.HasPrefix(ref.Addr, typeProject+".") {
			bad("project_crn must be the crn of the %s", typeProject)
		}
	default:
		bad(`params.type must be "application" or "job"`)
	}
	return out
}

// headerValue returns the value of header name (case-insensitive) in a map or object. An
// unknown value (a secret) reads as "Bearer <unknown>" when its template starts with "Bearer ".
func headerValue(headers cty.Value, name string) (string, bool) {
	if headers.IsNull() || !headers.IsKnown() || !headers.CanIterateElements() {
		return "", false
	}
	for it := headers.ElementIterator(); it.Next(); {
		k, v := it.Element()
		ks, _ := knownString(k)
		if !strings.EqualFold(ks, name) {
			continue
		}
		if s, ok := knownString(v); ok {
			return s, true
		}
		if v.IsKnown() || v.IsNull() {
			return "", false
		}
		// An unknown string: the secret is unknown, its prefix is refined when it came from a
		// template like "Bearer ${var.auth_token}".
		if rng := v.Range(); rng.StringPrefix() != "" {
			return rng.StringPrefix() + "<secret>", true
		}
		return "", false
	}
	return "", false
}

// Routes checks that every route of config.Routes has a topic that admits exactly its event
// types from keyguard's API source (or the periodic timer for the periodic route, plus Cloud Logs
// alerts where the route takes them and a Cloud Logs instance is configured), a destination that
// delivers to the route's function (app URL + path with the shared secret, or the job), and a
// subscription joining the two.
func Routes(e *Eval) []string {
	var p []string
	topics := map[string][]topicSource{}
	for _, t := range e.Resources(typeTopic) {
		srcs, probs := sourcesOf(t)
		p = append(p, probs...)
		topics[t.Addr()] = srcs
		for _, s := range srcs {
			if s.Kind != "keyguard" {
				continue
			}
			for _, r := range s.Rules {
				if !typeFilterRE.MatchString(r.Filter) {
					p = append(p, fmt.Sprintf("%s: event_type_filter %q on keyguard's source must be $.type == '<one event type>'", r.Where, r.Filter))
				}
			}
		}
	}
	dests := map[string]destination{}
	for _, d := range e.Resources(typeDestinationC) {
		dest := destinationOf(e, d)
		p = append(p, dest.Problems...)
		dests[d.Addr()] = dest
	}
	type sub struct {
		inst         *Instance
		topic, ddest string
	}
	var subs []sub
	for _, s := range e.Resources(typeSubscription) {
		tv, _ := s.Value("topic_id")
		dv, _ := s.Value("destination_id")
		tr, okT := RefOf(tv)
		dr, okD := RefOf(dv)
		if _, isTopic := topics[tr.Addr]; !okT || tr.Attr != "topic_id" || !isTopic {
			p = append(p, s.Addr()+": topic_id must be the topic_id of an "+typeTopic)
			continue
		}
		if !okD || dr.Attr != "destination_id" || e.Lookup(dr.Addr) == nil {
			p = append(p, s.Addr()+": destination_id must be the destination_id of a destination")
			continue
		}
		subs = append(subs, sub{inst: s, topic: tr.Addr, ddest: dr.Addr})
	}

	cloudLogsOn := false
	if v := e.Var("cloud_logs_instance_crn"); !v.IsNull() {
		cloudLogsOn = true
	}

	for _, r := range config.Routes {
		label := r.Function + " " + r.Kind
		if r.Path != "" {
			label += " " + r.Path
		}
		if r.Periodic {
			label += " (periodic)"
		} else {
			label += " " + strings.Join(r.Types, ",")
		}
		var why []string
		ok := false
		for _, s := range subs {
			d, isDest := dests[s.ddest]
			if !isDest || len(d.Problems) > 0 || d.Function != r.Function || d.Kind != r.Kind || d.Kind == "app" && d.Path != r.Path {
				continue
			}
			reason := topicServes(topics[s.topic], r, cloudLogsOn)
			if reason == "" {
				ok = true
				break
			}
			why = append(why, fmt.Sprintf("%s via %s: %s", s.inst.Addr(), s.topic, reason))
		}
		if !ok {
			msg := fmt.Sprintf("route %s: no subscription joins a matching topic to a destination delivering to it", label)
			if len(why) > 0 {
				msg += " (" + strings.Join(why, "; ") + ")"
			}
			p = append(p, msg)
		}
	}
	return p
}

// topicServes returns "" when the topic's sources and rules fit the route, else why not.
func topicServes(srcs []topicSource, r config.Route, cloudLogsOn bool) string {
	types := map[string]bool{}
	periodic, logs := false, false
	for _, s := range srcs {
		switch s.Kind {
		case "keyguard":
			for _, rule := range s.Rules {
				if m := typeFilterRE.FindStringSubmatch(rule.Filter); rule.Enabled && m != nil {
					types[m[1]] = true
				}
			}
		case "periodic":
			for _, rule := range s.Rules {
				if rule.Enabled && rule.Schedule != "" {
					periodic = true
				}
			}
		case "cloud-logs":
			for _, rule := range s.Rules {
				if rule.Enabled {
					logs = true
				}
			}
		default:
			return fmt.Sprintf("source %s is not keyguard's, the periodic timer or Cloud Logs", s.ID.GoString())
		}
	}
	if r.Periodic != periodic {
		if r.Periodic {
			return "no periodic-timer source with a schedule"
		}
		return "takes periodic ticks the route does not expect"
	}
	want := map[string]bool{}
	for _, t := range r.Types {
		want[t] = true
	}
	var missing, extra []string
	for t := range want {
		if !types[t] {
			missing = append(missing, t)
		}
	}
	for t := range types {
		if !want[t] {
			extra = append(extra, t)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		return "no rule admits " + strings.Join(missing, ", ")
	}
	if len(extra) > 0 {
		return "admits " + strings.Join(extra, ", ") + ", which the route does not take"
	}
	switch {
	case logs && !r.CloudLogsAlerts:
		return "takes Cloud Logs alerts the route does not expect"
	case r.CloudLogsAlerts && cloudLogsOn && !logs:
		return "a Cloud Logs instance is configured but its alerts do not reach this topic"
	}
	return ""
}

func isString(v cty.Value, want string) bool {
	s, ok := knownString(v)
	return ok && s == want
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
