package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/keyprotect"
	"github.com/keyguard-dev/keyguard/shared/logchain"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// Keys is what the check asks Key Protect. *keyprotect.Client implements it.
type Keys = keyprotect.KeyReader

// Sources are where Gather looks. Keys is optional (without it key versions are not checked).
type Sources struct {
	Objects objstore.Store
	Keys    Keys
}

// HeartbeatPrefix is where the scheduler leaves a trace of each delivery it handled.
const HeartbeatPrefix = "heartbeat/"

// Heartbeat is the trace of one tick delivery: heartbeat/<shard>-of-<shards>.json.
type Heartbeat struct {
	Tick      time.Time `json:"tick"`
	At        time.Time `json:"at"`
	Shard     int       `json:"shard"`
	Shards    int       `json:"shards"`
	Databases int       `json:"databases"`
}

// HeartbeatKey is the object key of a shard's heartbeat.
func HeartbeatKey(shard, shards int) string {
	return fmt.Sprintf("%s%d-of-%d.json", HeartbeatPrefix, shard, shards)
}

// NewestHeartbeat returns the newest heartbeat's At (zero when there is none).
func NewestHeartbeat(ctx context.Context, objs objstore.Store) (time.Time, error) {
	infos, err := objs.List(ctx, HeartbeatPrefix)
	if err != nil {
		return time.Time{}, fmt.Errorf("list heartbeats: %w", err)
	}
	var newest time.Time
	for _, in := range infos {
		body, _, err := objs.Get(ctx, in.Key)
		if errors.Is(err, objstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("read heartbeat %s: %w", in.Key, err)
		}
		var h Heartbeat
		if json.Unmarshal(body, &h) == nil && h.At.After(newest) {
			newest = h.At
		}
	}
	return newest, nil
}

// Gather observes every database of dbs: its state, its catalog, the files of its newest
// restorable chain in the store (one listing of each image's folder, which gives what a HEAD
// would: presence and size), the key versions they need (Key Protect, once per key), and the
// scheduler's heartbeats. A store failure for one database is recorded in its observation
// (CatalogErr), not returned.
func Gather(ctx context.Context, src Sources, dbs []config.Database, now time.Time) ([]Observation, error) {
	states := state.NewObjectStore(src.Objects)
	cat := catalog.New(src.Objects)
	beat, err := NewestHeartbeat(ctx, src.Objects)
	if err != nil {
		return nil, err
	}
	keys := map[string]keyStatus{}
	var out []Observation
	for _, db := range dbs {
		o := Observation{DB: db, Now: now, Heartbeat: beat, Beats: true}
		st, _, err := states.Get(ctx, db.Name)
		switch {
		case err == nil:
			o.State = st
		case !errors.Is(err, state.ErrNotFound):
			return nil, fmt.Errorf("read state of %s: %w", db.Name, err)
		}
		switch body, _, err := src.Objects.Get(ctx, logchain.ReportKey(db.Name)); {
		case err == nil:
			if rep, err := logchain.Decode(body); err != nil {
				o.LogsErr = err
			} else {
				o.Logs = &rep
			}
		case !errors.Is(err, objstore.ErrNotFound):
			o.LogsErr = err
		}
		l, err := cat.ListReport(ctx, db.Name)
		if err != nil {
			o.CatalogErr = err
			out = append(out, o)
			continue
		}
		o.Listing = &l
		o.Objects = map[string]Object{}
		plan, err := catalog.PlanRestore(l.Entries, time.Time{}, nil)
		if err == nil {
			if o.Keys == nil && src.Keys != nil {
				o.Keys = map[[2]string]string{}
			}
			for _, e := range plan.Images {
				if err := objects(ctx, src.Objects, e, o.Objects); err != nil {
					o.CatalogErr = err
				}
				if src.Keys != nil {
					ks, ok := keys[e.KeyCRN]
					if !ok {
						ks = observeKey(ctx, src.Keys, e.KeyCRN)
						keys[e.KeyCRN] = ks
					}
					o.Keys[[2]string{e.KeyCRN, e.KeyVersion}] = ks.unusable(e.KeyVersion)
				}
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// objects lists the folders of e's files and records each file's presence and size in into.
func objects(ctx context.Context, objs objstore.Store, e catalog.Entry, into map[string]Object) error {
	files := e.Images
	if e.Keystore != nil {
		files = append(files[:len(files):len(files)], *e.Keystore)
	}
	listed := map[string]bool{}
	for _, f := range files {
		if f.External() {
			continue
		}
		dir := path.Dir(f.Key) + "/"
		if !listed[dir] {
			listed[dir] = true
			infos, err := objs.List(ctx, dir)
			if err != nil {
				return fmt.Errorf("list %s: %w", dir, err)
			}
			for _, in := range infos {
				into[in.Key] = Object{Size: in.Size}
			}
		}
		if _, ok := into[f.Key]; !ok {
			into[f.Key] = Object{Missing: true}
		}
	}
	return nil
}

// keyStatus is what Key Protect said of a key: its usability, or why it could not be asked.
type keyStatus struct {
	u   keyprotect.Usability
	err error
}

func observeKey(ctx context.Context, keys Keys, crn string) keyStatus {
	u, err := keyprotect.Observe(ctx, keys, crn)
	return keyStatus{u: u, err: err}
}

// unusable says why version of the key cannot open an image, or "" (keyprotect.Usability).
func (k keyStatus) unusable(version string) string {
	if k.err != nil {
		return "Key Protect could not be asked: " + k.err.Error()
	}
	return k.u.Unusable(version)
}
