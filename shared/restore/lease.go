package restore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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
