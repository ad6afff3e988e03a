package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/errkind"
	"github.com/keyguard-dev/keyguard/shared/outbox"
)

// Event Notifications as keyguard meets it: a publish is accepted (or refused during an outage
// or by a 5xx), then each subscription gets the notification by HTTP, 10 s per attempt, up to 3
// retries a few seconds apart, after which it is lost; some notifications are lost outright,
// delivered twice, or late (hence out of order). A handler's 5xx, a crash or a timeout is a
// failed attempt; a 2xx or 4xx ends the delivery.
const (
	enAttemptTimeout = 10 * time.Second
	enRetryWait      = 3300 * time.Millisecond
	enAttempts       = 4
)

// subscription is one route of config.Routes with the handler that serves it.
type subscription struct {
	name      string
	types     []string
	cloudLogs bool
	periodic  bool
	h         edge.Handler
}

func (sub subscription) takes(typ string) bool {
	if sub.periodic {
		return typ == events.TypeTick
	}
	return slices.Contains(sub.types, typ) || (sub.cloudLogs && events.IsCloudLogsAlert(typ))
}

type bus struct {
	s    *Sim
	subs []subscription
}

// subscribe wires every app route of config.Routes to its handler in routes (by function, then
// path), as the deployment's Terraform subscribes them.
func (b *bus) subscribe(routes map[string]map[string]edge.Handler) error {
	for _, r := range config.Routes {
		if r.Kind != "app" {
			continue
		}
		h, ok := routes[r.Function][r.Path]
		if !ok {
			return fmt.Errorf("no handler for %s %s", r.Function, r.Path)
		}
		b.subs = append(b.subs, subscription{name: r.Function + r.Path, types: r.Types, cloudLogs: r.CloudLogsAlerts, periodic: r.Periodic, h: h})
	}
	return nil
}

// sender publishes as one function (outbox.Sender): its events carry source keyguard/<fn>.
type sender struct {
	s      *Sim
	source string
}

var _ outbox.Sender = sender{}

// Send publishes p under id: a step of the running invocation.
func (x sender) Send(_ context.Context, id string, p events.Payload) error {
	s := x.s
	s.pause(s.jitter(20*time.Millisecond, 90*time.Millisecond))
	s.maybeCrash("before publishing " + id)
	if s.failAt("publish "+id) || s.tr.ENOutages.at(s.now()) || s.rng.Float64() < s.p.ENAttemptFail {
		s.fault()
		return errkind.With(errkind.Transient, fmt.Errorf("send %s %s: 503 Service Unavailable", p.EventType(), id))
	}
	ev, err := events.Encode(id, x.source, s.now(), p)
	if err != nil {
		return errkind.With(errkind.Permanent, fmt.Errorf("send %s: %w", id, err))
	}
	s.en.publish(ev)
	s.maybeCrash("after publishing " + id)
	return nil
}

// publish routes an accepted notification to its subscriptions.
func (b *bus) publish(ev events.Event) {
	b.s.published(ev)
	for _, sub := range b.subs {
		if sub.takes(ev.Type) {
			b.route(ev, sub)
		}
	}
}

// route plans the deliveries of one notification to one subscription: lost, once, or twice,
// each after a delivery delay, sometimes a long one.
func (b *bus) route(ev events.Event, sub subscription) {
	s := b.s
	if s.rng.Float64() < s.p.ENDrop {
		s.m.enLost++
		s.trace("en-drop", sub.name+" "+ev.ID)
		return
	}
	copies := 1
	if s.rng.Float64() < s.p.ENDup {
		copies = 2
	}
	for c := range copies {
		d := s.jitter(20*time.Millisecond, 500*time.Millisecond)
		if s.rng.Float64() < s.p.ENDelay {
			d += s.jitter(0, s.p.ENMaxDelay)
		}
		if c > 0 {
			d += s.jitter(0, time.Minute)
		}
		s.after(d, "deliver "+sub.name+" "+ev.ID, func() { b.attempt(ev, sub, 1) })
	}
}

// attempt is one HTTP attempt of a delivery.
func (b *bus) attempt(ev events.Event, sub subscription, n int) {
	s := b.s
	failed := func() {
		if n < enAttempts {
			s.after(enRetryWait, "retry "+sub.name+" "+ev.ID, func() { b.attempt(ev, sub, n+1) })
			return
		}
		s.m.enLost++
		s.trace("en-lost", sub.name+" "+ev.ID)
	}
	if s.tr.ENOutages.at(s.now()) || s.rng.Float64() < s.p.ENAttemptFail {
		failed()
		return
	}
	done, timedOut := false, false
	s.after(enAttemptTimeout, "timeout "+sub.name+" "+ev.ID, func() {
		if !done {
			timedOut = true
			failed()
		}
	})
	start := s.now()
	out := s.invoke(sub.name, sub.name+" "+ev.Type+" "+ev.ID, func(ctx context.Context) error {
		_, err := sub.h.Handle(ctx, ev)
		s.maybeCrash("before answering")
		return err
	})
	done = true
	status := edge.Status(out.err)
	if out.crashed {
		status = 0
	}
	s.trace("handled", fmt.Sprintf("%s %s %d", sub.name, ev.ID, status))
	if sub.periodic && !out.crashed && out.err == nil && !out.faulted {
		s.or.cleanTick(start)
	}
	if timedOut {
		return // Event Notifications gave up on this attempt already
	}
	if out.crashed || status >= 500 {
		failed()
	}
}

// tick is the Event Notifications periodic timer: silent during an outage.
func (b *bus) tick() {
	s := b.s
	s.after(s.o.Tick, "tick", b.tick)
	now := s.now()
	if s.tr.ENOutages.at(now) {
		s.m.ticksLost++
		return
	}
	ev := events.Event{ID: "tick-" + strconv.FormatInt(now.Unix(), 10), Source: "/en/periodic-timer/keyguard", Type: events.TypeTick,
		Time: now, Data: json.RawMessage(`{}`)}
	for _, sub := range b.subs {
		if sub.periodic {
			b.route(ev, sub)
		}
	}
}

// cloudLogs delivers, as IBM Cloud Logs does through Event Notifications, an alert on the
// kms.secrets.rotate activity event of rotation n (index into the key's rotations) of key k.
func (b *bus) cloudLogs(k *KeyTrace, n int) {
	s := b.s
	rot := k.Rotations[n]
	if s.tr.ENOutages.at(s.now()) {
		return
	}
	activity := map[string]any{
		"action": "kms.secrets.rotate", "outcome": "success", "eventTime": rot.At.UTC().Format("2006-01-02T15:04:05.00-0700"),
		"target":      map[string]any{"id": k.CRN, "typeURI": "kms/secrets"},
		"requestData": map[string]any{"requestURI": "/api/v2/keys/" + k.ID + "/actions/rotate"},
	}
	if !rot.NoVersion {
		activity["responseData"] = map[string]any{"keyVersionId": k.version(n + 1)}
	}
	data, err := json.Marshal(map[string]any{
		"alert_definition": map[string]any{"name": "keyguard-kms-rotate", "alert_type": "StandardMoreThanAlertEvent"},
		"log_example":      activity, "log_example_truncated": false, "status": "triggered",
	})
	if err != nil {
		panic(err)
	}
	ev := events.Event{ID: "logs-" + k.ID + "-" + strconv.FormatInt(rot.At.Unix(), 10), Source: "crn:v1:bluemix:public:logs:us-south:a/0a1b2c3d::",
		Type: events.CloudLogsAlertPrefix + "keyguard-kms-rotate" + events.CloudLogsAlertSuffix, Time: s.now(), Data: data}
	b.publish(ev)
}
