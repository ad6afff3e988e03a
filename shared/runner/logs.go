package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2"
	"github.com/keyguard-dev/keyguard/shared/logchain"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// need is what the log chain check needs from the catalog: the first log every cataloged image
// needs (the oldest kept restorable point: retention deletes images, never keeps one it has no
// entry for), and Db2's first active log. From is -1 when an image does not record its log
// range (older entries): then nothing is pruned.
func need(entries []catalog.Entry, cfg db2.DBConfig) (logchain.Need, bool) {
	n := logchain.Need{From: -1, FirstActive: -1, Chain: -1}
	complete := true
	for _, e := range entries {
		if e.IsDiscarded() {
			continue
		}
		first, err := logchain.ParseName(e.LogRange.First)
		if err != nil {
			complete = false
			continue
		}
		if n.From < 0 || first < n.From {
			n.From = first
		}
	}
	if fa, err := logchain.ParseName(cfg.FirstActiveLog); err == nil {
		n.FirstActive = fa
	}
	return n, complete && n.From >= 0
}

// checkLogs runs the log chain check of db after a backup, prunes archived logs no cataloged
// image needs when log_archive.prune allows (and Db2's AUTO_DEL_REC_OBJ does not do it), and
// writes the report at logchain/<database>.json. It never fails the backup: it returns what to
// add to the run's note ("" when nothing).
func (r *Runner) checkLogs(ctx context.Context, db config.Database, cfg db2.DBConfig, entries []catalog.Entry) string {
	if r.Objects == nil || !cfg.Recoverable() {
		return ""
	}
	// The backup closed the active log: read the first active log file again.
	if out, _, err := r.DB2.Run(ctx, []string{"db2", "get", "db", "cfg", "for", db.Alias}); err == nil {
		if now, err := db2.ParseDBConfig(out); err == nil {
			cfg = now
		}
	}
	now := r.now()
	l, why, ok := logchain.ArchiveOf(db, cfg, r.Objects)
	var rep logchain.Report
	if !ok {
		rep = logchain.Report{Database: db.Name, CheckedAt: now, Archive: "-", Method: cfg.LogArchMeth1, From: -1, FirstActive: -1, Oldest: -1, Newest: -1, Error: why}
	} else {
		nd, complete := need(entries, cfg)
		var err error
		rep, err = logchain.Check(ctx, l, nd, logchain.Options{Database: db.Name, Method: cfg.LogArchMeth1, AutoDelete: cfg.AutoDelRecObj,
			Prune: db.LogArchive.Prune && complete, Now: now})
		if err != nil {
			r.log().Warn("log chain check", "database", db.Name, "err", err)
			if rep.Error == "" {
				rep.Error = err.Error()
			}
		}
	}
	body, err := logchain.Encode(rep)
	if err == nil {
		_, err = r.Objects.Put(ctx, logchain.ReportKey(db.Name), body, objstore.Cond{})
	}
	if err != nil {
		r.log().Warn("write the log chain report", "database", db.Name, "err", err)
	}
	r.log().Info("log chain", "database", db.Name, "report", rep.Summary(), "broken", rep.Broken, "deleted", rep.Deleted, "deleter", rep.Deleter)
	s := "log chain: " + rep.Summary()
	if rep.Deleted > 0 {
		s += fmt.Sprintf("; %d archived log(s) no cataloged image needs deleted", rep.Deleted)
	}
	if rep.Deleter == "db2" {
		s += "; AUTO_DEL_REC_OBJ is ON: Db2 deletes archived logs, keyguard does not"
	}
	return s
}

func (r *Runner) now() time.Time { return clock.Or(r.Clock).Now() }
