package enemu

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Source is a notification source of the instance, as the admin API lists it.
type Source struct {
	ID, Name string
	// Type is e.g. "api" (an API source such as keyguard's) or "periodic-timer".
	Type    string
	Enabled bool
}

// AddSource adds s, or replaces the source with its id.
func (e *Emulator) AddSource(s Source) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, old := range e.sources {
		if old.ID == s.ID {
			e.sources[i] = s
			return
		}
	}
	e.sources = append(e.sources, s)
}

// topic is a topic of the admin API: its rules accumulate from the subscriptions that named it.
type topic struct {
	id, name string
	rules    []rule
}

type rule struct {
	source, typeFilter, notificationFilter, schedule string
}

// addTopicLocked creates s's topic if needed and adds the rules s implies.
func (e *Emulator) addTopicLocked(s Subscription) {
	name := topicName(s)
	var t *topic
	for _, x := range e.topics {
		if x.name == name {
			t = x
		}
	}
	if t == nil {
		t = &topic{id: stableID("topic", name), name: name}
		e.topics = append(e.topics, t)
	}
	sources := s.SourceIDs
	if len(sources) == 0 {
		sources = []string{""}
	}
	for _, src := range sources {
		var add []rule
		switch {
		case s.Schedule != "":
			add = append(add, rule{source: src, schedule: s.Schedule})
		case len(s.Types) == 0:
			add = append(add, rule{source: src, typeFilter: "$.*", notificationFilter: s.NotificationFilter})
		}
		for _, typ := range s.Types {
			if s.Schedule == "" {
				add = append(add, rule{source: src, typeFilter: "$.type == '" + typ + "'", notificationFilter: s.NotificationFilter})
			}
		}
		if s.TypePrefix != "" && s.Schedule == "" {
			add = append(add, rule{source: src, typeFilter: "$.*", notificationFilter: s.NotificationFilter})
		}
		for _, r := range add {
			if !slices.Contains(t.rules, r) {
				t.rules = append(t.rules, r)
			}
		}
	}
}

func topicName(s Subscription) string {
	if s.Topic != "" {
		return s.Topic
	}
	return s.Name
}

func destName(s Subscription) string {
	if s.Destination.Name != "" {
		return s.Destination.Name
	}
	return s.Name
}

// stableID derives a UUID-shaped id from a kind and a name.
func stableID(kind, name string) string {
	h := sha256.Sum256([]byte(kind + "\x00" + name))
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

const adminPrefix = "/v1/instances/{instance_id}"

func (e *Emulator) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+adminPrefix+"/sources", e.admin(e.listSources))
	mux.HandleFunc("GET "+adminPrefix+"/topics", e.admin(e.listTopics))
	mux.HandleFunc("GET "+adminPrefix+"/topics/{id}", e.admin(e.getTopic))
	mux.HandleFunc("GET "+adminPrefix+"/destinations", e.admin(e.listDestinations))
	mux.HandleFunc("GET "+adminPrefix+"/destinations/{id}", e.admin(e.getDestination))
	mux.HandleFunc("GET "+adminPrefix+"/subscriptions/{id}", e.admin(e.getSubscription))
}

// admin checks the token and the instance, as handleSend does.
func (e *Emulator) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !e.iam.Valid(r.Header.Get("Authorization")) {
			apiError(w, http.StatusUnauthorized, "unauthorized", "a valid IAM bearer token is required")
			return
		}
		if e.instanceID != "" && r.PathValue("instance_id") != e.instanceID {
			apiError(w, http.StatusNotFound, "not_found", "instance not found")
			return
		}
		h(w, r)
	}
}

// page cuts items by the offset and limit query parameters.
func page[T any](w http.ResponseWriter, r *http.Request, key string, items []T) {
	q := r.URL.Query()
	limit, offset := 10, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			apiError(w, http.StatusBadRequest, "bad_request", "limit must be 1 to 200")
			return
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			apiError(w, http.StatusBadRequest, "bad_request", "offset must be a whole number")
			return
		}
		offset = n
	}
	start := min(offset, len(items))
	end := min(start+limit, len(items))
	out := items[start:end]
	if out == nil {
		out = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"total_count": len(items), "offset": offset, "limit": limit, key: out})
}

var updated = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)

func (e *Emulator) listSources(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	var out []map[string]any
	for _, s := range e.sources {
		n := 0
		for _, t := range e.topics {
			if slices.ContainsFunc(t.rules, func(x rule) bool { return x.source == s.ID }) {
				n++
			}
		}
		out = append(out, map[string]any{"id": s.ID, "name": s.Name, "description": s.Name, "type": s.Type, "enabled": s.Enabled,
			"updated_at": updated, "topic_count": n})
	}
	e.mu.Unlock()
	page(w, r, "sources", out)
}

func (e *Emulator) listTopics(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	var out []map[string]any
	for _, t := range e.topics {
		out = append(out, map[string]any{"id": t.id, "name": t.name, "description": t.name, "source_count": len(t.sourceIDs()),
			"sources_names": t.sourceIDs(), "subscription_count": len(e.subsOfLocked(t))})
	}
	e.mu.Unlock()
	page(w, r, "topics", out)
}

func (t *topic) sourceIDs() []string {
	var out []string
	for _, x := range t.rules {
		if !slices.Contains(out, x.source) {
			out = append(out, x.source)
		}
	}
	return out
}

func (e *Emulator) subsOfLocked(t *topic) []Subscription {
	var out []Subscription
	for _, s := range e.subs {
		if topicName(s) == t.name {
			out = append(out, s)
		}
	}
	return out
}

func (e *Emulator) getTopic(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.topics {
		if t.id != r.PathValue("id") {
			continue
		}
		var sources []map[string]any
		for _, src := range t.sourceIDs() {
			var rules []map[string]any
			for i, x := range t.rules {
				if x.source != src {
					continue
				}
				rl := map[string]any{"id": stableID("rule", t.name+strconv.Itoa(i)), "enabled": true, "updated_at": updated}
				if x.schedule != "" {
					rl["event_schedule_filter"] = map[string]any{"expression": x.schedule}
				} else {
					rl["event_type_filter"] = x.typeFilter
				}
				if x.notificationFilter != "" {
					rl["notification_filter"] = x.notificationFilter
				}
				rules = append(rules, rl)
			}
			sources = append(sources, map[string]any{"id": src, "name": e.sourceNameLocked(src), "rules": rules})
		}
		subs := []map[string]any{}
		for _, s := range e.subsOfLocked(t) {
			subs = append(subs, e.subscriptionJSONLocked(s, t))
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": t.id, "name": t.name, "description": t.name, "updated_at": updated,
			"source_count": len(sources), "sources": sources, "subscription_count": len(subs), "subscriptions": subs})
		return
	}
	apiError(w, http.StatusNotFound, "not_found", "topic not found")
}

func (e *Emulator) sourceNameLocked(id string) string {
	for _, s := range e.sources {
		if s.ID == id {
			return s.Name
		}
	}
	return id
}

func (e *Emulator) subscriptionJSONLocked(s Subscription, t *topic) map[string]any {
	return map[string]any{"id": stableID("subscription", s.Name), "name": s.Name, "description": s.Name, "updated_at": updated,
		"destination_id": stableID("destination", s.Name), "destination_name": destName(s), "destination_type": s.Destination.Type,
		"topic_id": t.id, "topic_name": t.name}
}

func (e *Emulator) listDestinations(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	var out []map[string]any
	for _, s := range e.subs {
		out = append(out, map[string]any{"id": stableID("destination", s.Name), "name": destName(s), "description": destName(s),
			"type": s.Destination.Type, "subscription_count": 1, "subscription_names": []string{s.Name}, "updated_at": updated})
	}
	e.mu.Unlock()
	page(w, r, "destinations", out)
}

func (e *Emulator) getDestination(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.subs {
		if stableID("destination", s.Name) != r.PathValue("id") {
			continue
		}
		d := map[string]any{"id": r.PathValue("id"), "name": destName(s), "description": destName(s), "type": s.Destination.Type,
			"updated_at": updated, "subscription_count": 1, "subscription_names": []string{s.Name}}
		if s.Destination.Type == "ibmce" {
			params := map[string]any{"type": s.Destination.CEType}
			if s.Destination.CEType == "job" {
				params["job_name"], params["project_crn"] = s.Destination.JobName, "crn:v1:bluemix:public:codeengine:us-south:a/0::project:local"
			} else {
				params["url"], params["verb"] = s.URL, "POST"
				var sensitive []string
				for k := range s.Headers {
					sensitive = append(sensitive, k) // values are never shown
				}
				slices.Sort(sensitive)
				params["sensitive_headers"] = sensitive
			}
			d["config"] = map[string]any{"params": params}
		}
		writeJSON(w, http.StatusOK, d)
		return
	}
	apiError(w, http.StatusNotFound, "not_found", "destination not found")
}

func (e *Emulator) getSubscription(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.subs {
		if stableID("subscription", s.Name) != r.PathValue("id") {
			continue
		}
		var t *topic
		for _, x := range e.topics {
			if x.name == topicName(s) {
				t = x
			}
		}
		body := e.subscriptionJSONLocked(s, t)
		if strings.HasPrefix(s.Destination.Type, "smtp") {
			items := func(addrs []string) []map[string]string {
				out := []map[string]string{}
				for _, a := range addrs {
					out = append(out, map[string]string{"email": a, "updated_at": updated})
				}
				return out
			}
			body["attributes"] = map[string]any{"invited": items(s.Destination.Invited), "subscribed": items(s.Destination.Subscribed),
				"unsubscribed": []any{}, "add_notification_payload": true, "reply_to_mail": "", "reply_to_name": "", "from_name": ""}
		}
		writeJSON(w, http.StatusOK, body)
		return
	}
	apiError(w, http.StatusNotFound, "not_found", "subscription not found")
}
