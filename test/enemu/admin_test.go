package enemu_test

import (
	"context"
	"testing"

	"github.com/keyguard-dev/keyguard/test/enemu"
)

// A subscription to a person's destination is delivered at once, without an HTTP attempt, and
// consumes no injected fault.
func TestPersonalDestinationIsDeliveredWithoutHTTP(t *testing.T) {
	en := enemu.Start(t, "key")
	if err := en.Subscribe(enemu.Subscription{Name: "mail", Types: []string{"dev.keyguard.alert"}}); err == nil {
		t.Fatal("a subscription with neither a URL nor a person's destination was accepted")
	}
	if err := en.Subscribe(enemu.Subscription{Name: "mail", Types: []string{"dev.keyguard.alert"},
		Destination: enemu.Destination{Type: "smtp_ibm", Subscribed: []string{"ops@example.com"}}}); err != nil {
		t.Fatal(err)
	}
	en.DropNext(1)
	if _, err := en.Publish(enemu.Notification{ID: "a1", Source: "s", Type: "dev.keyguard.alert", SourceID: "src",
		DefaultShort: "x", DefaultLong: "x", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := en.WaitIdle(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := en.Deliveries()
	if len(d) != 1 || d[0].Outcome != enemu.Delivered || d[0].Attempts != 0 {
		t.Fatalf("deliveries: %+v", d)
	}
}
