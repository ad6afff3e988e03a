package sim

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
)

// cos is Cloud Object Storage as keyguard meets it: conditional writes (If-Match on the ETag,
// If-None-Match: * to create; 412 on mismatch), ETags that are the MD5 of the body, listings
// sorted by key that show a write only after a lag and a deleted object for a while after, calls
// that take time, answer 503 in bursts and outages, and writes applied whose answer is lost.
//
// Calls other than Get are steps of the running invocation (they take virtual time, may crash
// it, and let concurrent events run). Get of a catalog entry may run on the catalog's listing
// goroutines: it takes no time, draws nothing from the run's random source (its faults are a
// hash of the key and the instant) and never crashes anything.
type cos struct {
	s  *Sim
	mu sync.Mutex
	// parts holds the objects by the key's first two path segments, each sorted by key, so that
	// a database's listing does not scan the others.
	parts map[string]*partition
}

type partition struct {
	keys []string
	objs map[string]*object
}

type object struct {
	body     []byte
	etag     string
	mod      time.Time
	listFrom time.Time // listed from then on
	gone     bool      // deleted: Get says not found, listings show it until listTo
	listTo   time.Time
	// st is the decoded state of a state object (decoded once, when written).
	st *state.State
}

var _ objstore.Store = (*cos)(nil)

func newCOS(s *Sim) *cos { return &cos{s: s, parts: map[string]*partition{}} }

// partKey is the key's first two path segments ("catalog/db01/"), or its first ("state/").
func partKey(key string) string {
	i := strings.IndexByte(key, '/')
	if i < 0 {
		return ""
	}
	if j := strings.IndexByte(key[i+1:], '/'); j >= 0 {
		return key[:i+1+j+1]
	}
	return key[:i+1]
}

func (c *cos) part(key string, create bool) *partition {
	pk := partKey(key)
	p := c.parts[pk]
	if p == nil && create {
		p = &partition{objs: map[string]*object{}}
		c.parts[pk] = p
	}
	return p
}

func (p *partition) insert(key string) {
	i := sort.SearchStrings(p.keys, key)
	if i < len(p.keys) && p.keys[i] == key {
		return
	}
	p.keys = append(p.keys, "")
	copy(p.keys[i+1:], p.keys[i:])
	p.keys[i] = key
}

func (p *partition) remove(key string) {
	i := sort.SearchStrings(p.keys, key)
	if i < len(p.keys) && p.keys[i] == key {
		p.keys = append(p.keys[:i], p.keys[i+1:]...)
	}
	delete(p.objs, key)
}

// latency is how long one call takes now: a few tens of milliseconds, seconds in a slow-down.
func (c *cos) latency() time.Duration {
	if c.s.tr.COSBursts.at(c.s.now()) {
		return c.s.jitter(c.s.p.COSBurstLat[0], c.s.p.COSBurstLat[1])
	}
	return c.s.jitter(8*time.Millisecond, 40*time.Millisecond)
}

// failure is the fault injected into a call, if any. u is the call's draw in [0, 1); ask is
// false for reads that may run on other goroutines.
func (c *cos) failure(op, key string, u float64, ask bool) error {
	now := c.s.now()
	if ask && c.s.failAt(op+" "+key) {
		return objstore.MarkTransient(fmt.Errorf("objstore: %s %s: 503 Service Unavailable", op, key))
	}
	if c.s.tr.COSOutages.at(now) {
		c.s.fault()
		if ask {
			c.s.trace("fault", "outage "+op+" "+key)
		}
		return objstore.MarkTransient(fmt.Errorf("objstore: %s %s: 503 Service Unavailable (outage)", op, key))
	}
	p := c.s.p.COSError
	if c.s.tr.COSBursts.at(now) {
		p = max(p, c.s.p.COSBurstErr)
	}
	if u < p {
		c.s.fault()
		if ask { // a read on a listing goroutine leaves no trace: the trace is in step order
			c.s.trace("fault", "503 "+op+" "+key)
		}
		return objstore.MarkTransient(fmt.Errorf("objstore: %s %s: 503 SlowDown", op, key))
	}
	return nil
}

// Get returns the body and ETag of key.
func (c *cos) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := c.check(ctx, key); err != nil {
		return nil, "", err
	}
	if err := c.failure("get", key, hash01(c.s.o.Seed, "get", key, c.s.now().UnixNano()), false); err != nil {
		return nil, "", err
	}
	o := c.lookup(key)
	if o == nil {
		return nil, "", fmt.Errorf("objstore: get %s: %w", key, objstore.ErrNotFound)
	}
	return o.body, o.etag, nil
}

// getState is the state store's read: a step of the running invocation, returning the decoded
// state the object holds.
func (c *cos) getState(ctx context.Context, key string) (*state.State, string, error) {
	c.s.pause(c.latency())
	if err := c.check(ctx, key); err != nil {
		return nil, "", err
	}
	if err := c.failure("get", key, c.s.rng.Float64(), true); err != nil {
		return nil, "", err
	}
	o := c.lookup(key)
	if o == nil {
		return nil, "", fmt.Errorf("objstore: get %s: %w", key, objstore.ErrNotFound)
	}
	return o.st, o.etag, nil
}

func (c *cos) lookup(key string) *object {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.part(key, false)
	if p == nil {
		return nil
	}
	o := p.objs[key]
	if o == nil || o.gone {
		return nil
	}
	return o
}

// Put stores body at key if cond holds.
func (c *cos) Put(ctx context.Context, key string, body []byte, cond objstore.Cond) (string, error) {
	c.s.pause(c.latency())
	if err := c.check(ctx, key); err != nil {
		return "", err
	}
	if cond.IfMatch != "" && cond.IfNoneMatch {
		return "", errors.New("objstore: Cond with both IfMatch and IfNoneMatch")
	}
	c.s.maybeCrash("before writing " + key)
	if err := c.failure("put", key, c.s.rng.Float64(), true); err != nil {
		return "", err
	}
	sum := md5.Sum(body)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	now := c.s.now()
	o := &object{body: body, etag: etag, mod: now, listFrom: now}
	if strings.HasPrefix(key, "state/") {
		st, err := state.Decode(body)
		if err != nil {
			return "", fmt.Errorf("objstore: put %s: the simulation keeps only decodable states: %w", key, err)
		}
		o.st = st
	}
	c.mu.Lock()
	p := c.part(key, true)
	old := p.objs[key]
	exists := old != nil && !old.gone
	switch {
	case cond.IfNoneMatch && exists:
		c.mu.Unlock()
		return "", fmt.Errorf("objstore: put %s if absent: %w", key, objstore.ErrPrecondition)
	case cond.IfMatch != "" && !exists:
		c.mu.Unlock()
		return "", fmt.Errorf("objstore: put %s if-match %s: %w", key, cond.IfMatch, objstore.ErrNotFound)
	case cond.IfMatch != "" && old.etag != cond.IfMatch:
		c.mu.Unlock()
		return "", fmt.Errorf("objstore: put %s if-match %s: %w", key, cond.IfMatch, objstore.ErrPrecondition)
	}
	if exists {
		o.listFrom = old.listFrom
	} else if c.s.p.ListLag > 0 {
		o.listFrom = now.Add(time.Duration(c.s.rng.Int64N(int64(c.s.p.ListLag))))
	}
	p.objs[key] = o
	p.insert(key)
	c.mu.Unlock()
	var prev *object
	if exists {
		prev = old
	}
	c.s.wrote(key, prev, o)
	if c.s.rng.Float64() < c.s.p.COSAmbiguous {
		// Applied, but the answer was lost: the SDK's retry of a conditional PUT finds its own
		// write and answers 412; an unconditional one times out.
		c.s.fault()
		c.s.trace("fault", "ambiguous put "+key)
		if cond.IfMatch != "" || cond.IfNoneMatch {
			return "", fmt.Errorf("objstore: put %s (retried): %w", key, objstore.ErrPrecondition)
		}
		return "", objstore.MarkTransient(fmt.Errorf("objstore: put %s: timeout", key))
	}
	c.s.maybeCrash("after writing " + key)
	return etag, nil
}

// Delete removes key (a missing key is not an error).
func (c *cos) Delete(ctx context.Context, key string) error {
	c.s.pause(c.latency())
	if err := c.check(ctx, key); err != nil {
		return err
	}
	c.s.maybeCrash("before deleting " + key)
	if err := c.failure("delete", key, c.s.rng.Float64(), true); err != nil {
		return err
	}
	now := c.s.now()
	c.mu.Lock()
	p := c.part(key, false)
	var old *object
	if p != nil {
		old = p.objs[key]
	}
	if old == nil || old.gone {
		c.mu.Unlock()
		c.s.maybeCrash("after deleting " + key)
		return nil
	}
	tomb := *old
	tomb.gone, tomb.st = true, nil
	tomb.listTo = now
	if c.s.p.ListLag > 0 {
		tomb.listTo = now.Add(time.Duration(c.s.rng.Int64N(int64(c.s.p.ListLag))))
	}
	if tomb.listTo.After(now) {
		p.objs[key] = &tomb
	} else {
		p.remove(key)
	}
	c.mu.Unlock()
	c.s.deleted(key, old)
	c.s.maybeCrash("after deleting " + key)
	return nil
}

// List returns the objects under prefix that a listing shows now, sorted by key.
func (c *cos) List(ctx context.Context, prefix string) ([]objstore.Info, error) {
	c.s.pause(c.latency())
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: list %s: %w", prefix, err)
	}
	if err := c.failure("list", prefix, c.s.rng.Float64(), true); err != nil {
		return nil, err
	}
	now := c.s.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []objstore.Info{}
	var parts []*partition
	if pk := partKey(prefix); strings.HasPrefix(prefix, pk) && pk != "" && strings.Count(prefix, "/") >= strings.Count(pk, "/") {
		if p := c.parts[pk]; p != nil {
			parts = append(parts, p)
		}
	} else {
		names := make([]string, 0, len(c.parts))
		for k := range c.parts {
			if strings.HasPrefix(k, prefix) || strings.HasPrefix(prefix, k) {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			parts = append(parts, c.parts[k])
		}
	}
	for _, p := range parts {
		i := sort.SearchStrings(p.keys, prefix)
		var expired []string
		for ; i < len(p.keys) && strings.HasPrefix(p.keys[i], prefix); i++ {
			k := p.keys[i]
			o := p.objs[k]
			switch {
			case o.gone && !o.listTo.After(now):
				expired = append(expired, k)
				continue
			case !o.gone && o.listFrom.After(now):
				continue
			}
			out = append(out, objstore.Info{Key: k, Size: int64(len(o.body)), ETag: o.etag, LastModified: o.mod})
		}
		for _, k := range expired {
			p.remove(k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (c *cos) check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return objstore.ValidateKey(key)
}

// stored returns the state object of db as stored now (nil when there is none), for the
// invariants.
func (c *cos) stored(db string) *state.State {
	if o := c.lookup(state.Key(db)); o != nil {
		return o.st
	}
	return nil
}

// DeleteMany deletes keys one after the other (objstore.BatchDeleter): the simulation runs on
// one goroutine, so the store's concurrent fallback is not taken. Each key may fail or crash as
// a single delete does.
func (c *cos) DeleteMany(ctx context.Context, keys []string) error {
	var failed []error
	for _, k := range keys {
		if err := c.Delete(ctx, k); err != nil {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}
