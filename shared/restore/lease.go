package restore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// DefaultLeaseTerm is how long a restore's lease holds without renewal; it is renewed every
// third of it while the restore runs.
const DefaultLeaseTerm = 30 * time.Minute

// DefaultLeaseSettle is how long a restore waits, once its lease shows in a listing of the
// leases, before it checks that its images are still cataloged: a retention pass that read the
// leases just before may still be deleting.
const DefaultLeaseSettle = time.Minute

// leaseShowWait bounds the wait for a lease to show in listings (they may lag writes), polled
// every leasePoll.
const (
	leaseShowWait = 2 * time.Minute
	leasePoll     = 2 * time.Second
)

// leaseCallTimeout bounds one write or deletion of the lease, which runs outside the restore's
// context (a release must happen even when the restore was cancelled).
const leaseCallTimeout = 30 * time.Second

// restoreID names the restore of event e: the first 16 bytes of SHA-256(source, id), in hex. It
// names its mark (restores/<db>/<id>.json) and its lease (leases/<db>/restore-<id>.json).
func restoreID(e events.Event) string {
	sum := sha256.Sum256([]byte(e.Source + "\x00" + e.ID))
	return hex.EncodeToString(sum[:16])
}

// hold takes the restore's lease on the images of plan (catalog.PutLease, create-only), so that
// retention keeps them, and renews it every third of the term on the Restorer's clock until the
// returned release deletes it. Without Leases it holds nothing. A lease that cannot be written
// fails the restore before anything is downloaded; a renewal that fails is logged and tried
// again at the next period (the lease holds for a whole term).
func (r *Restorer) hold(ctx context.Context, id string, plan catalog.RestorePlan) (release func(), err error) {
	if r.Leases == nil {
		return func() {}, nil
	}
	h := &leaseHolder{store: r.Leases, clock: clock.Or(r.Clock), term: cmp.Or(r.LeaseTerm, DefaultLeaseTerm), log: r.log()}
	h.lease = catalog.RestoreLease(plan, id, h.clock.Now(), h.term)
	if h.etag, err = catalog.PutLease(ctx, h.store, h.lease, ""); err != nil {
		return nil, fmt.Errorf("lease the images to keep retention off them: %w", err)
	}
	h.timer = h.clock.AfterFunc(h.term/3, h.renew)
	return h.release, nil
}

// settle makes sure the images of plan are the restore's to use. Retention reads the leases,
// then deletes what it drops: a pass that read them before this restore's lease showed in a
// listing may delete an image the restore planned. So settle waits until the lease shows in a
// listing of the database's leases (at most leaseShowWait; listings may lag writes), then
// LeaseSettle more (DefaultLeaseSettle when zero, none when negative), and checks that every image
// of plan is still cataloged; when one is not, the restore fails and can be asked again. Without
// Leases it checks nothing.
func (r *Restorer) settle(ctx context.Context, db string, plan catalog.RestorePlan) error {
	if r.Leases == nil {
		return nil
	}
	clk, timer := clock.Or(r.Clock), clock.Or(r.Timer)
	if lr, ok := r.Leases.(catalog.LeaseReader); ok {
		deadline := timer.Now().Add(leaseShowWait)
		for {
			inUse, err := catalog.InUse(ctx, lr, db, clk.Now())
			if err == nil && !slices.ContainsFunc(plan.Images, func(e catalog.Entry) bool { return !inUse[e.ImageTimestamp] }) {
				break
			}
			if !timer.Now().Before(deadline) {
				r.log().Warn("the restore's lease does not show in listings yet; going on", "database", db, "err", err)
				break
			}
			if err := clock.Sleep(ctx, timer, leasePoll); err != nil {
				return err
			}
		}
	}
	if d := cmp.Or(r.LeaseSettle, DefaultLeaseSettle); d > 0 {
		if err := clock.Sleep(ctx, timer, d); err != nil {
			return err
		}
	}
	entries, err := r.Catalog.List(ctx, db)
	if err != nil {
		return fmt.Errorf("check that the images are still cataloged: %w", err)
	}
	for _, p := range plan.Images {
		if !slices.ContainsFunc(entries, func(e catalog.Entry) bool { return e.ImageTimestamp == p.ImageTimestamp && !e.IsDiscarded() }) {
			return fmt.Errorf("image %s was deleted while the restore took its lease (by a retention pass that had not seen it): ask again", p.Name())
		}
	}
	return nil
}

type leaseHolder struct {
	store catalog.LeaseWriter
	clock clock.Clock
	term  time.Duration
	log   *slog.Logger

	mu       sync.Mutex
	lease    catalog.Lease
	etag     string
	timer    clock.Timer
	released bool
}

func (h *leaseHolder) renew() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaseCallTimeout)
	defer cancel()
	l := h.lease
	l.Renewed = h.clock.Now()
	l.Until = l.Renewed.Add(h.term)
	etag, err := catalog.PutLease(ctx, h.store, l, h.etag)
	if errors.Is(err, objstore.ErrNotFound) { // deleted behind our back: take it again
		etag, err = catalog.PutLease(ctx, h.store, l, "")
	}
	if err != nil {
		h.log.Warn("renew restore lease", "lease", l.Key(), "until", h.lease.Until, "err", err)
	} else {
		h.lease, h.etag = l, etag
	}
	h.timer = h.clock.AfterFunc(h.term/3, h.renew)
}

// release stops the renewals and deletes the lease. Idempotent. A failed deletion is logged: the
// lease ends by itself at its Until.
func (h *leaseHolder) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	h.released = true
	h.timer.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), leaseCallTimeout)
	defer cancel()
	if err := catalog.DeleteLease(ctx, h.store, h.lease.Database, h.lease.RestoreID); err != nil {
		h.log.Warn("release restore lease", "lease", h.lease.Key(), "expires", h.lease.Until, "err", err)
	}
}
