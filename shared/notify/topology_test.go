package notify_test

import (
	"context"
	"slices"
	"testing"

	"github.com/keyguard-dev/keyguard/shared/notify"
	"github.com/keyguard-dev/keyguard/shared/preflight"
	"github.com/keyguard-dev/keyguard/test/enemu"
)

// The real SDK reads the emulator's sources, topics with their rules and subscriptions, Code
// Engine destinations with their URL or job, and an email subscription's addresses.
func TestTopologyThroughTheSDK(t *testing.T) {
	en := enemu.Start(t, apiKey)
	en.AddSource(enemu.Source{ID: sourceID, Name: "keyguard-events", Type: "api", Enabled: true})
	en.AddSource(enemu.Source{ID: "timer", Name: "Periodic timer", Type: "periodic-timer", Enabled: true})
	subs := []enemu.Subscription{
		{Name: "keyguard-tick", SourceIDs: []string{"timer"}, Types: []string{"dev.keyguard.tick"}, Schedule: "*/5 * * * *", URL: "http://127.0.0.1:1/tick"},
		{Name: "keyguard-rotation-events", SourceIDs: []string{sourceID}, Types: []string{"dev.keyguard.key.rotated", "dev.keyguard.preflight"}, URL: "http://127.0.0.1:1/events"},
		{Name: "keyguard-restore-events", SourceIDs: []string{sourceID}, Types: []string{"dev.keyguard.restore.requested"}, URL: "http://127.0.0.1:1/job",
			Destination: enemu.Destination{CEType: "job", JobName: "keyguard-restore"}},
		{Name: "keyguard-alerts-critical-email", Topic: "keyguard-alerts-critical", SourceIDs: []string{sourceID}, Types: []string{"dev.keyguard.alert"},
			NotificationFilter: "$.data.severity == 'critical'", Destination: enemu.Destination{Type: "smtp_ibm", Subscribed: []string{"ops@example.com"}, Invited: []string{"new@example.com"}}},
	}
	// more than one page of topics
	for i := range 12 {
		subs = append(subs, enemu.Subscription{Name: "extra-" + string(rune('a'+i)), Types: []string{"x"}, URL: "http://127.0.0.1:1/x"})
	}
	for _, s := range subs {
		if err := en.Subscribe(s); err != nil {
			t.Fatal(err)
		}
	}
	en.Unsubscribe("extra-a") // its topic stays, with no subscription
	auth, err := notify.NewIAMAuthenticator(apiKey, en.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := notify.New(notify.Options{URL: en.URL(), InstanceID: instanceID, SourceID: sourceID, Authenticator: auth})
	if err != nil {
		t.Fatal(err)
	}
	topo, err := c.Topology(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Sources) != 2 || topo.Sources[1].Type != "periodic-timer" || !topo.Sources[0].Enabled {
		t.Fatalf("sources: %+v", topo.Sources)
	}
	if len(topo.Topics) != 16 || len(topo.Destinations) != 15 {
		t.Fatalf("%d topics (want 16), %d destinations (want 15)", len(topo.Topics), len(topo.Destinations))
	}
	byName := map[string]preflight.ENTopic{}
	for _, x := range topo.Topics {
		byName[x.Name] = x
	}
	tick := byName["keyguard-tick"]
	if len(tick.Rules) != 1 || tick.Rules[0].Schedule != "*/5 * * * *" || tick.Rules[0].SourceID != "timer" {
		t.Fatalf("tick topic: %+v", tick)
	}
	rot := byName["keyguard-rotation-events"]
	if len(rot.Rules) != 2 || rot.Rules[1].EventTypeFilter != "$.type == 'dev.keyguard.preflight'" || len(rot.Subscriptions) != 1 {
		t.Fatalf("rotation topic: %+v", rot)
	}
	mail := byName["keyguard-alerts-critical"].Subscriptions
	if len(mail) != 1 || mail[0].DestinationType != "smtp_ibm" || !slices.Equal(mail[0].Subscribed, []string{"ops@example.com"}) || !slices.Equal(mail[0].Invited, []string{"new@example.com"}) {
		t.Fatalf("email subscription: %+v", mail)
	}
	if n := len(byName["extra-a"].Subscriptions); n != 0 {
		t.Fatalf("unsubscribed topic has %d subscriptions", n)
	}
	dests := map[string]preflight.ENDestination{}
	for _, d := range topo.Destinations {
		dests[d.Name] = d
	}
	if d := dests["keyguard-rotation-events"]; d.Type != "ibmce" || d.CEType != "application" || d.URL != "http://127.0.0.1:1/events" {
		t.Fatalf("app destination: %+v", d)
	}
	if d := dests["keyguard-restore-events"]; d.CEType != "job" || d.JobName != "keyguard-restore" {
		t.Fatalf("job destination: %+v", d)
	}
}
