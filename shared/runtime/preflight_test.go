package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/preflight"
)

// A probe is recorded and stops there, on any route; other events pass; the tick route records
// the last tick at most once an hour; a probe of mode run starts the preflight once.
func TestWithPreflight(t *testing.T) {
	ctx := context.Background()
	objs := objstore.NewMemory()
	clk := clock.NewFake(time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC))
	var inner, runs atomic.Int32
	h := edge.HandlerFunc(func(context.Context, events.Event) (edge.Result, error) {
		inner.Add(1)
		return edge.Result{Outcome: "handled"}, nil
	})
	d := Deps{Objects: objs, Clock: clk, Preflight: func(string) { runs.Add(1) }}
	routes := WithPreflight(config.FnScheduler, d, map[string]edge.Handler{config.PathTick: h, config.PathEvents: h}, false)
	if again := WithPreflight(config.FnScheduler, d, routes, false); again[config.PathEvents] != routes[config.PathEvents] {
		t.Fatal("wrapping twice wrapped twice")
	}
	probe, err := events.Encode("preflight/pf-1", "keyguard/ops", clk.Now(), events.Preflight{RunID: "pf-1", RequestedBy: "ops", Mode: events.PreflightRun})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a duplicate delivery
		res, err := routes[config.PathEvents].Handle(ctx, probe)
		if err != nil || res.Outcome != "preflight" {
			t.Fatalf("probe: %+v %v", res, err)
		}
	}
	if inner.Load() != 0 || runs.Load() != 1 {
		t.Fatalf("the probe reached the handler %d times and started %d preflights", inner.Load(), runs.Load())
	}
	b, _, err := objs.Get(ctx, preflight.ReceiptKey("pf-1", config.FnScheduler))
	var rc preflight.Receipt
	if err != nil || json.Unmarshal(b, &rc) != nil || rc.Path != config.PathEvents {
		t.Fatalf("receipt %s: %v", b, err)
	}
	tick := events.Event{ID: "t1", Source: "periodic-timer", Type: "com.ibm.cloud.event-notifications.periodic-timer:triggered"}
	for i := range 4 { // at 0, 15, 30 and 45 minutes
		if _, err := routes[config.PathTick].Handle(ctx, tick); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, _, err := objs.Get(ctx, preflight.TickKey); err != nil {
				t.Fatalf("first tick not recorded: %v", err)
			}
			_ = objs.Delete(ctx, preflight.TickKey)
		}
		clk.Advance(15 * time.Minute)
	}
	if inner.Load() != 4 {
		t.Fatalf("ticks handled %d", inner.Load())
	}
	if _, _, err := objs.Get(ctx, preflight.TickKey); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("a tick within the hour was recorded again: %v", err)
	}
	_, _ = routes[config.PathTick].Handle(ctx, tick) // at 60 minutes
	if _, _, err := objs.Get(ctx, preflight.TickKey); err != nil {
		t.Fatalf("a tick an hour later was not recorded: %v", err)
	}
	jobRoutes := WithPreflight(config.FnRestore, d, map[string]edge.Handler{config.PathEvents: h}, true)
	probe2, _ := events.Encode("preflight/pf-2", "keyguard/ops", clk.Now(), events.Preflight{RunID: "pf-2", RequestedBy: "ops"})
	if _, err := JobHandler(jobRoutes).Handle(ctx, probe2); err != nil {
		t.Fatal(err)
	}
	if b, _, _ := objs.Get(ctx, preflight.ReceiptKey("pf-2", config.FnRestore)); !strings.Contains(string(b), `"path":"job"`) {
		t.Fatalf("job receipt: %s", b)
	}
	bad := probe2
	bad.Data = []byte(`{"run_id":"../x","requested_by":"ops"}`)
	if _, err := jobRoutes[config.PathEvents].Handle(ctx, bad); !errors.Is(err, events.ErrInvalid) {
		t.Fatalf("a bad probe: %v", err)
	}
}

func TestClaimsReadsIAMTokens(t *testing.T) {
	// header.payload.signature, payload {"iam_id":"iam-ServiceId-1","sub":"x","exp":1800000000,"account":{"bss":"acct"}}
	tok := "e30.eyJpYW1faWQiOiJpYW0tU2VydmljZUlkLTEiLCJzdWIiOiJ4IiwiZXhwIjoxODAwMDAwMDAwLCJhY2NvdW50Ijp7ImJzcyI6ImFjY3QifX0.sig"
	id := claims(tok)
	if id.Subject != "iam-ServiceId-1" || id.Account != "acct" || id.Expires.Unix() != 1800000000 {
		t.Fatalf("claims: %+v", id)
	}
	if claims("not-a-jwt").Subject != "" {
		t.Fatal("garbage read as claims")
	}
}
