package stack

import (
	"time"

	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/edge"
	"github.com/keyguard-dev/keyguard/shared/notify"
	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/restore"
	"github.com/keyguard-dev/keyguard/shared/upload"
	"github.com/keyguard-dev/keyguard/test/enemu"
	"github.com/keyguard-dev/keyguard/test/fakedb2"
)

// localLeaseSettle is the restore job's wait after its lease shows (restore.DefaultLeaseSettle
// on IBM Cloud): the local stack's retention passes take milliseconds.
const localLeaseSettle = time.Second

// restoreJob is the restore job of db2cli databases, as Event Notifications starts it for each
// restore.requested (a Code Engine job run): the real restore.Restorer against the fake db2, run
// in a goroutine so that the delivery is answered at once, as a job run's start is.
type restoreJob struct {
	r   *restore.Restorer
	log *slog.Logger
	wg  sync.WaitGroup
}

func (j *restoreJob) Handle(_ context.Context, e events.Event) (edge.Result, error) {
	if e.Type != events.TypeRestoreRequested {
		return edge.Result{}, edge.Reject("the restore job takes %s", events.TypeRestoreRequested)
	}
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		if _, err := j.r.Handle(context.Background(), e); err != nil {
			j.log.Error("restore job", "event", e.ID, "err", err)
		}
	}()
	return edge.Result{Outcome: "started"}, nil
}

// Wait waits for every restore started to end.
func (j *restoreJob) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { j.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("restore still running: %w", ctx.Err())
	}
}

// startRestoreJob serves the restore job of db2cli databases and subscribes it to
// restore.requested, from the routing table (config.Routes).
func (s *Stack) startRestoreJob(d *Db2CLI, log *slog.Logger) error {
	cos, err := objstore.NewCOSClient(objstore.Options{Endpoint: s.S3.Endpoint, Region: s.S3.Region, HMACKeyID: s.S3.AccessKey, HMACSecret: s.S3.SecretKey})
	if err != nil {
		return err
	}
	up, err := upload.New(cos, s.S3.Bucket, "keyguard/", upload.Options{Logger: log})
	if err != nil {
		return err
	}
	auth, err := notify.NewIAMAuthenticator(s.apiKey, s.enURL)
	if err != nil {
		return err
	}
	send, err := notify.New(notify.Options{URL: s.enURL, InstanceID: enInstance, SourceID: enSourceID, Source: "keyguard/" + config.FnRestore,
		Authenticator: auth, Clock: s.Clock, Logger: log})
	if err != nil {
		return err
	}
	j := &restoreJob{log: log, r: &restore.Restorer{Fleet: config.Static{F: s.Fleet}, DB2: fakedb2.Runner{Bin: d.FakeBin, State: d.StateFile},
		Catalog: catalog.New(s.Objects), Download: up, Send: send, Marks: s.Objects, Leases: s.Objects, Archive: s.Objects, Keys: s.Keys, Clock: s.Clock, Log: log.With("fn", config.FnRestore),
		LeaseSettle: localLeaseSettle}}
	s.waiters = append(s.waiters, j)
	u, err := s.serve(edge.Mux(edge.Options{Token: s.Token, Logger: log.With("fn", config.FnRestore)}, map[string]edge.Handler{config.PathEvents: j}))
	if err != nil {
		return err
	}
	s.URLs[config.FnRestore] = u
	for _, r := range config.Routes {
		if r.Function == config.FnRestore {
			if err := s.EN.Subscribe(enemu.Subscription{Name: r.Function, Types: r.Types, URL: u + config.PathEvents,
				Headers: map[string]string{"Authorization": "Bearer " + s.Token.Reveal()}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Restore asks for a restore as an operator would (restore.requested through Event
// Notifications) and waits until it has ended. The outcome is in the catalog (its restore
// record) and in the restore.completed notification.
func (s *Stack) Restore(ctx context.Context, id string, req events.RestoreRequested) (catalog.RestoreRecord, error) {
	if req.ID == "" {
		req.ID = id
	}
	if err := s.Ops.Send(ctx, id, req); err != nil {
		return catalog.RestoreRecord{}, err
	}
	if err := s.settle(ctx); err != nil {
		return catalog.RestoreRecord{}, err
	}
	db := req.Database
	return catalog.New(s.Objects).GetRestore(ctx, db, req.ID)
}
