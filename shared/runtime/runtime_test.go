package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func full() map[string]string {
	return map[string]string{
		config.EnvAuthToken: "0123456789abcdef0123", config.EnvAPIKey: "api-key-value",
		config.EnvCOSEndpoint: "https://s3.example", config.EnvCOSBucket: "b", config.EnvCOSInstanceCRN: "crn:cos",
		config.EnvENURL: "https://en.example", config.EnvENInstanceID: "i", config.EnvENSourceID: "s",
	}
}

func TestLoadDefaultsAndValidates(t *testing.T) {
	c, err := Load("scheduler", env(full()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != "8080" || c.IAMURL != DefaultIAMURL || c.FleetKey != "config/fleet.yaml" || c.LogLevel != slog.LevelInfo {
		t.Fatalf("defaults: %+v", c)
	}
	if s := fmt.Sprintf("%v %+v", c, c); strings.Contains(s, "api-key-value") || strings.Contains(s, "0123456789abcdef0123") {
		t.Fatalf("secrets printed: %s", s)
	}
	_, err = Load("rotation", env(map[string]string{config.EnvAuthToken: "short", config.EnvLogLevel: "loud"}))
	if err == nil {
		t.Fatal("empty configuration accepted")
	}
	for _, want := range []string{"at least 16", config.EnvAPIKey, config.EnvCOSEndpoint, config.EnvCOSBucket, config.EnvENURL, config.EnvCOSInstanceCRN, config.EnvLogLevel} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestEveryReadVariableIsListed(t *testing.T) {
	var read []string
	getenv := func(k string) string { read = append(read, k); return full()[k] }
	for _, fn := range append(config.Apps, config.FnRunner) {
		read = nil
		if _, err := Load(fn, getenv); err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, k := range localOnly {
			listed[k] = true
		}
		for _, k := range config.FunctionEnv[fn] {
			listed[k] = true
		}
		for _, k := range read {
			if !listed[k] {
				t.Errorf("%s reads %s, which config.FunctionEnv does not list (so Terraform would not set it)", fn, k)
			}
		}
	}
}

func TestUnlistedVariablesAreIgnored(t *testing.T) {
	m := full()
	m[config.EnvKPURL], m[config.EnvKPInstanceID] = "https://kp.example", "kp"
	c, err := Load(config.FnCompletion, env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.KPURL != "" {
		t.Fatal("completion read a variable config.FunctionEnv does not list for it")
	}
	if c, _ = Load(config.FnScheduler, env(m)); c.KPURL != "https://kp.example" {
		t.Fatal("scheduler did not read its Key Protect URL")
	}
}

func TestCOSFleetCachesAndKeepsLastGood(t *testing.T) {
	ctx := context.Background()
	objs := objstore.NewMemory()
	if _, err := objs.Put(ctx, "config/fleet.yaml", config.Example, objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))
	f := &COSFleet{Objects: objs, Key: "config/fleet.yaml", TTL: time.Minute, Clock: clk}
	got, err := f.Fleet(ctx)
	if err != nil || len(got.Databases) != 3 {
		t.Fatalf("first read: %v %v", got, err)
	}
	if _, err := objs.Put(ctx, "config/fleet.yaml", []byte("version: 9"), objstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if again, _ := f.Fleet(ctx); again != got {
		t.Fatal("re-read before the TTL")
	}
	clk.Advance(2 * time.Minute)
	again, err := f.Fleet(ctx)
	if err != nil || again != got {
		t.Fatalf("an invalid new policy replaced the good one: %v %v", again, err)
	}
	empty := &COSFleet{Objects: objstore.NewMemory(), Key: "config/fleet.yaml", TTL: time.Minute}
	if _, err := empty.Fleet(ctx); err == nil {
		t.Fatal("missing policy gave no error")
	}
}

func TestJobHandlerRoutesTicksAndEvents(t *testing.T) {
	var got []string
	mk := func(name string) edge.Handler {
		return edge.HandlerFunc(func(context.Context, events.Event) (edge.Result, error) {
			got = append(got, name)
			return edge.Result{}, nil
		})
	}
	h := JobHandler(map[string]edge.Handler{config.PathTick: mk("tick"), config.PathEvents: mk("events")})
	ctx := context.Background()
	_, _ = h.Handle(ctx, events.Event{Type: events.TypeKnativePing})
	_, _ = h.Handle(ctx, events.Event{Type: events.TypeBackupRequested})
	if strings.Join(got, ",") != "tick,events" {
		t.Fatalf("routed %v", got)
	}
	if _, err := JobHandler(map[string]edge.Handler{}).Handle(ctx, events.Event{Type: "x"}); !errors.Is(err, edge.ErrRejected) {
		t.Fatalf("no handler: %v", err)
	}
}
