package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/keyguard-dev/keyguard/events"
	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/clock"
	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/db2"
	"github.com/keyguard-dev/keyguard/shared/logchain"
)

// ErrRefused: the restore would do something it was not asked to (replace an existing
// database, disconnect applications) or cannot do what was asked (a point in time outside the
// restorable range). Nothing was changed.
var ErrRefused = errors.New("restore refused")

// Range is the span of time a database can be restored to: from the end of its oldest
// restorable image to the newest log record known to be archived (or the end of its newest
// restorable image, when the archive cannot be listed).
type Range struct {
	From, To time.Time
	// ToSource says where To comes from.
	ToSource string
}

func (rg Range) String() string {
	return fmt.Sprintf("%s to %s (%s)", rg.From.UTC().Format(time.RFC3339), rg.To.UTC().Format(time.RFC3339), rg.ToSource)
}

// RestorableRange is the range of entries alone: from the end of the oldest restorable
// database image to the end of the newest. ok is false when nothing is restorable. Pure.
func RestorableRange(entries []catalog.Entry) (Range, bool) {
	var rg Range
	ok := false
	for _, e := range entries {
		if e.Scope != catalog.ScopeDatabase || e.IsDiscarded() {
			continue
		}
		if _, err := catalog.Chain(entries, e.ImageTimestamp); err != nil {
			continue
		}
		if !ok || e.EndedAt.Before(rg.From) {
			rg.From = e.EndedAt
		}
		if !ok || e.EndedAt.After(rg.To) {
			rg.To = e.EndedAt
		}
		ok = true
	}
	rg.ToSource = "the end of the newest image"
	return rg, ok
}

// outcome is what a restore produced, before it is recorded.
type outcome struct {
	rec   catalog.RestoreRecord
	notes []string
}

// restore does the work and always returns the restore's record. The steps, each checked
// before the next (nothing on the database changes until the images are downloaded and checked):
//
//  1. the catalog's images, a point in time checked against the restorable range (the newest
//     archived log from LIST HISTORY ARCHIVE LOG, after ARCHIVE LOG closed the active one), the
//     plan (catalog.PlanRestore) and the keys (Key Protect);
//  2. a lease on the images, the keystore copy opened, every image downloaded and its SHA-256
//     checked against the catalog, then db2ckbkp -h on the target (logs included, encrypted);
//  3. the target database: in place, connected applications refuse the restore unless Force,
//     which quiesces the database (QUIESCE DATABASE IMMEDIATE FORCE CONNECTIONS); into a new
//     database, an existing one of that name refuses it unless Replace;
//  4. an encrypted image's keystore copy put where KEYSTORE_LOCATION points when the instance
//     has no keystore of its own;
//  5. RESTORE (INCREMENTAL AUTOMATIC for a chain, LOGTARGET for an image with logs, REDIRECT
//     with SET STOGROUP PATHS and CONTINUE for other storage paths, WITHOUT ROLLING FORWARD when
//     asked); a failure runs RESTORE ... ABORT so the database is not left restore pending;
//  6. ROLLFORWARD to the end of logs or the point in time (USING UTC TIME AND STOP, OVERFLOW LOG
//     PATH where the image's logs were extracted) when Db2 left the database pending;
//  7. the probe query on the restored database, then DROP DATABASE when asked (a drill).
//
// The measured time (Seconds) runs from the first download to the probe's answer, on the wall
// clock.
func (r *Restorer) restore(ctx context.Context, db config.Database, req events.RestoreRequested, id string) outcome {
	now := clock.Or(r.Clock).Now
	into := strings.ToUpper(req.Into)
	if into == db.Alias {
		into = ""
	}
	o := outcome{rec: catalog.RestoreRecord{Database: db.Name, ID: id, RequestedBy: req.RequestedBy, StartedAt: now(), Target: req.Target,
		PointInTime: req.PointInTime, Into: into, Drill: req.Drill}}
	var began time.Time // the wall clock at the first download
	fail := func(err error) outcome {
		o.rec.EndedAt = now()
		if !began.IsZero() {
			o.rec.Seconds = time.Since(began).Seconds()
		}
		o.rec.Class = classOf(err)
		var de *db2.Error
		if errors.As(err, &de) {
			o.rec.Code = de.Code
		}
		o.rec.Message = truncate(fmt.Sprintf("restore of %s failed (%s): %v", db.Name, o.rec.Class, err), 4000)
		return o
	}
	if req.Drop && into == "" {
		return fail(fmt.Errorf("%w: only a database restored into may be dropped, not %s itself", ErrRefused, db.Alias))
	}
	if len(req.Tablespaces) > 0 && (into != "" || !req.PointInTime.IsZero() || req.WithoutRollForward) {
		return fail(fmt.Errorf("%w: table spaces are restored in place and rolled forward to the end of the logs", ErrRefused))
	}
	entries, err := r.Catalog.List(ctx, db.Name)
	if err != nil {
		return fail(fmt.Errorf("read catalog: %w", err))
	}
	if req.Target != "" {
		entries = slices.DeleteFunc(entries, func(e catalog.Entry) bool { return e.ImageTimestamp > req.Target })
	}
	if !req.PointInTime.IsZero() {
		rg, err := r.restorableRange(ctx, db, entries)
		if err != nil {
			return fail(err)
		}
		if req.PointInTime.Before(rg.From) || req.PointInTime.After(rg.To) {
			return fail(fmt.Errorf("%w: %s is outside the restorable range of %s: %s", ErrRefused,
				req.PointInTime.UTC().Format(time.RFC3339), db.Name, rg))
		}
		o.notes = append(o.notes, "restorable range "+rg.String())
	}
	noCheck := func(string, string) bool { return true }
	if r.Keys == nil {
		noCheck = nil // PlanRestore notes that keys were not checked
	}
	var plan catalog.RestorePlan
	if len(req.Tablespaces) > 0 {
		plan, err = catalog.PlanTablespaceRestore(entries, req.Tablespaces, noCheck)
	} else {
		plan, err = catalog.PlanRestore(entries, req.PointInTime, noCheck)
	}
	if err != nil {
		return fail(err)
	}
	if len(plan.Partitions) > 0 && into != "" {
		return fail(fmt.Errorf("%w: a partitioned database is restored in place, partition by partition", ErrRefused))
	}
	for _, e := range plan.Images {
		o.rec.Images = append(o.rec.Images, e.Name())
	}
	o.rec.Target = plan.Target
	if req.Target != "" && plan.Target != req.Target {
		return fail(fmt.Errorf("image %s cannot be restored (the newest that can, at or before it, is %s): %s",
			req.Target, plan.Target, strings.Join(plan.Notes, "; ")))
	}
	var keys map[string]keyStatus
	if r.Keys != nil {
		if keys, err = observeKeys(ctx, r.Keys, keyCRNs(entries)); err != nil {
			return fail(fmt.Errorf("check key availability: %w", err))
		}
		if len(req.Tablespaces) == 0 {
			if plan, err = planWithKeys(entries, req.PointInTime, plan, keys); err != nil {
				return fail(err)
			}
		}
	}
	// From here on the images are in use: retention keeps them until the lease is released.
	release, err := r.hold(ctx, id, plan)
	if err != nil {
		return fail(err)
	}
	defer release()
	if err := r.settle(ctx, db.Name, plan); err != nil {
		return fail(err)
	}
	o.notes = append(o.notes, plan.Notes...)
	began = time.Now()
	target := plan.Images[len(plan.Images)-1]
	ksDir := ""
	if target.Keystore != nil {
		dir, note, err := r.keystore(ctx, db.BackupDir, target, keys)
		if err != nil {
			return fail(fmt.Errorf("keystore copied with %s: %w", plan.Target, err))
		}
		if note != "" {
			o.notes = append(o.notes, note)
		}
		o.notes = append(o.notes, fmt.Sprintf("the keystore copied with image %s is in %s", plan.Target, dir))
		ksDir = dir
	}
	var local []string
	defer func() {
		for _, p := range local {
			if err := os.RemoveAll(p); err != nil {
				r.log().Warn("remove restore file", "path", p, "err", err)
			}
		}
	}()
	var targetPath string
	for _, e := range plan.Images {
		for _, obj := range e.Images {
			p, err := imagePath(db.BackupDir, e, obj)
			if err != nil {
				return fail(err)
			}
			local = append(local, p)
			if err := DownloadFile(ctx, r.Download, obj, p); err != nil {
				return fail(err)
			}
			if e.ImageTimestamp == target.ImageTimestamp && targetPath == "" {
				targetPath = p
			}
		}
	}
	// Db2's own check of the target image, and what its header says.
	out, err := r.run(ctx, "db2ckbkp", "-h", targetPath)
	if err != nil {
		return fail(err)
	}
	ok, details, err := db2.ParseCheckBackup(out)
	if err != nil {
		return fail(fmt.Errorf("db2ckbkp -h %s: %w", targetPath, err))
	}
	if !ok {
		return fail(fmt.Errorf("db2ckbkp -h %s: %w", targetPath, &db2.Error{Class: events.Permanent, Reason: db2.ReasonVerificationFailed,
			Msg: fmt.Sprintf("the image fails Db2's check: %s", strings.Join(details.Errors, "; "))}))
	}
	withLogs := details.Header["Includes Logs"] == "1"
	encrypted := details.Header["Encrypt Info Flags"] != "" && details.Header["Encrypt Info Flags"] != "0x0"
	online := details.Header["Backup Mode"] == "1" || target.Mode == events.Online
	if !req.WithoutRollForward {
		// The archived logs the roll-forward reads must all be there: refused now, before the
		// database is touched, rather than halted by Db2 half way (SQL4970N).
		note, err := r.checkArchivedLogs(ctx, db, target, withLogs, req.PointInTime)
		if err != nil {
			return fail(err)
		}
		if note != "" {
			o.notes = append(o.notes, note)
		}
	}

	if err := r.prepareTarget(ctx, db, req, into, &o); err != nil {
		return fail(err)
	}
	if encrypted {
		if err := r.placeKeystore(ctx, ksDir, &o); err != nil {
			return fail(err)
		}
	}
	logDir := ""
	if withLogs && !req.WithoutRollForward {
		logDir = filepath.Join(db.BackupDir, "logs-"+id)
		if err := os.MkdirAll(logDir, 0o700); err != nil {
			return fail(err)
		}
		local = append(local, logDir)
	}
	cmds, err := db2.PlanRestore(db2.RestoreRequest{Source: db.Alias, Into: into, Dir: db.BackupDir, Target: plan.Target,
		Incremental: len(plan.Images) > 1, LogTarget: logDir, Replace: into == "" || req.Replace, WithoutRollForward: req.WithoutRollForward,
		Online: online, StoragePaths: req.StoragePaths, PointInTime: req.PointInTime, Partitions: plan.Partitions, Tablespaces: plan.Tablespaces})
	if err != nil {
		return fail(err)
	}
	for _, argv := range cmds.Restore {
		if err := r.db2(ctx, argv); err != nil {
			if cmds.Abort != nil {
				if aerr := r.db2(ctx, cmds.Abort); aerr != nil {
					err = fmt.Errorf("%w; and RESTORE ... ABORT failed too, the database may be left restore pending: %v", err, aerr)
				} else {
					err = fmt.Errorf("%w (RESTORE ... ABORT cleaned up)", err)
				}
			}
			return fail(err)
		}
	}
	restored := orText(into, db.Alias)
	out, err = r.run(ctx, "db2", "get", "db", "cfg", "for", restored)
	if err != nil {
		return fail(err)
	}
	cfg, err := db2.ParseDBConfig(out)
	if err != nil {
		return fail(fmt.Errorf("db cfg for %s after the restore: %w", restored, err))
	}
	rolled := "no roll-forward: Db2 did not leave the database rollforward pending, so it is as of the image"
	// Restored table spaces are always left rollforward pending (the database itself is not).
	if (cfg.RollforwardPending || len(plan.Tablespaces) > 0) && cmds.RollForward != nil {
		out, err := r.run(ctx, cmds.RollForward...)
		if err != nil {
			return fail(err)
		}
		st, err := db2.ParseRollforward(out)
		if err != nil {
			return fail(fmt.Errorf("rollforward %s: %w", restored, err))
		}
		rolled = "rolled forward " + plan.RollForward
		if !st.LastCommitted.IsZero() {
			rolled += ", last committed transaction " + st.LastCommitted.UTC().Format(time.RFC3339)
		}
	}
	if req.Probe != "" {
		res, err := r.probe(ctx, restored, req.Probe)
		if err != nil {
			return fail(fmt.Errorf("probe of %s: %w", restored, err))
		}
		o.rec.ProbeResult = truncate(strings.Join(res.First, " "), 1000)
	}
	o.rec.Seconds = time.Since(began).Seconds()
	if req.Drop {
		if err := r.db2(ctx, []string{"db2", "drop", "database", restored}); err != nil {
			return fail(fmt.Errorf("drop %s after the drill: %w", restored, err))
		}
		o.notes = append(o.notes, "dropped "+restored)
	}
	o.rec.EndedAt = now()
	o.rec.Success = true
	where := "in place"
	if into != "" {
		where = "into " + into
	}
	if len(plan.Tablespaces) > 0 {
		where = "table spaces " + strings.Join(plan.Tablespaces, ", ") + " in place"
	}
	if len(plan.Partitions) > 0 {
		where += fmt.Sprintf(" on partitions %v (catalog partition first)", plan.Partitions)
	}
	msg := fmt.Sprintf("restored %s %s to image %s from %s in %.1fs; %s", db.Name, where, plan.Target, strings.Join(o.rec.Images, ", "), o.rec.Seconds, rolled)
	if req.Probe != "" {
		msg += "; probe returned " + orText(o.rec.ProbeResult, "no row")
	}
	for _, n := range o.notes {
		msg += "; " + n
	}
	o.rec.Message = truncate(msg, 4000)
	return o
}

// restorableRange is RestorableRange, with its end taken from Db2's archived logs when the
// source database is on this instance: ARCHIVE LOG closes the active log, then LIST HISTORY
// ARCHIVE LOG names the newest log record archived.
func (r *Restorer) restorableRange(ctx context.Context, db config.Database, entries []catalog.Entry) (Range, error) {
	rg, ok := RestorableRange(entries)
	if !ok {
		return Range{}, fmt.Errorf("%w: no restorable image of %s in the catalog", catalog.ErrNoRestorableChain, db.Name)
	}
	if out, err := r.run(ctx, "db2", "archive", "log", "for", "database", db.Alias); err != nil || !strings.Contains(out, "DB20000I") {
		return rg, nil // not on this instance, or not archiving: the images are all there is
	}
	out, err := r.run(ctx, "db2", "list", "history", "archive", "log", "all", "for", db.Alias)
	if err != nil {
		return Range{}, err
	}
	h, err := db2.ParseHistory(out)
	if err != nil {
		return rg, nil
	}
	if e, end, ok := h.NewestArchivedLog(); ok && end.After(rg.To) {
		rg.To, rg.ToSource = end, "the newest archived log, "+e.FirstLog
	}
	return rg, nil
}

// prepareTarget checks the database restored into, and for an in-place restore disconnects
// its applications when asked to.
func (r *Restorer) prepareTarget(ctx context.Context, db config.Database, req events.RestoreRequested, into string, o *outcome) error {
	if into != "" {
		out, err := r.run(ctx, "db2", "get", "db", "cfg", "for", into)
		if err != nil {
			return err
		}
		if _, perr := db2.ParseDBConfig(out); perr == nil {
			if !req.Replace {
				return fmt.Errorf("%w: database %s exists on this instance; ask with replace to overwrite it", ErrRefused, into)
			}
			o.notes = append(o.notes, "replaced the existing database "+into)
		}
		return nil
	}
	out, err := r.run(ctx, "db2", "list", "applications", "for", "db", db.Alias)
	if err != nil {
		return err
	}
	apps, err := db2.ParseApplications(out)
	if err != nil {
		if errors.Is(err, &db2.Error{Code: "SQL1013N"}) {
			return nil // no such database here yet: a restore creates it
		}
		return fmt.Errorf("list applications for %s: %w", db.Alias, err)
	}
	if len(apps) == 0 {
		return nil
	}
	var who []string
	for _, a := range apps {
		who = append(who, fmt.Sprintf("%s (%s, handle %d)", a.Name, a.AuthID, a.Handle))
	}
	if !req.Force {
		return fmt.Errorf("%w: %d application(s) are connected to %s: %s; a restore in place needs the database offline: ask with force to disconnect them (QUIESCE DATABASE IMMEDIATE FORCE CONNECTIONS)",
			ErrRefused, len(apps), db.Alias, strings.Join(who, ", "))
	}
	for _, argv := range [][]string{{"db2", "connect", "to", db.Alias}, {"db2", "quiesce", "database", "immediate", "force", "connections"}} {
		if err := r.db2ish(ctx, argv); err != nil {
			return err
		}
	}
	if err := r.db2ish(ctx, []string{"db2", "connect", "reset"}); err != nil {
		return err
	}
	o.notes = append(o.notes, fmt.Sprintf("forced %d application(s) off %s: %s", len(apps), db.Alias, strings.Join(who, ", ")))
	return nil
}

// placeKeystore points KEYSTORE_LOCATION at the keystore copy taken with the image when the
// instance has no usable keystore of its own (a new instance, a disaster recovery). An instance
// with its own keystore keeps it: Db2 adds master keys to a keystore and never removes them, so
// the instance's is at least as complete as an older copy, and other databases of the instance
// depend on it.
func (r *Restorer) placeKeystore(ctx context.Context, dir string, o *outcome) error {
	out, err := r.run(ctx, "db2", "get", "dbm", "cfg")
	if err != nil {
		return err
	}
	ks, err := db2.ParseDBMKeystore(out)
	if err != nil {
		return fmt.Errorf("dbm cfg: %w", err)
	}
	if ks.Local() {
		if _, err := os.Stat(ks.Location); err == nil {
			o.notes = append(o.notes, "the instance's own keystore "+ks.Location+" is kept (KEYSTORE_LOCATION)")
			return nil
		}
	}
	if dir == "" {
		return fmt.Errorf("the image is encrypted, the instance has no keystore and no keystore copy was taken with the image: %w",
			&db2.Error{Class: events.Configuration, Code: "SQL1728N", Msg: "the keystore could not be accessed"})
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.p12"))
	if len(files) == 0 {
		return fmt.Errorf("the keystore copy in %s holds no .p12 keystore", dir)
	}
	if err := r.db2(ctx, []string{"db2", "update", "dbm", "cfg", "using", "KEYSTORE_TYPE", "PKCS12", "KEYSTORE_LOCATION", files[0]}); err != nil {
		return err
	}
	o.notes = append(o.notes, "KEYSTORE_LOCATION now points at the keystore copied with the image, "+files[0])
	return nil
}

// probe connects to db, runs the query and resets the connection.
func (r *Restorer) probe(ctx context.Context, db, query string) (db2.QueryResult, error) {
	if err := r.db2ish(ctx, []string{"db2", "connect", "to", db}); err != nil {
		return db2.QueryResult{}, err
	}
	defer func() {
		if err := r.db2ish(ctx, []string{"db2", "connect", "reset"}); err != nil {
			r.log().Warn("connect reset after the probe", "db", db, "err", err)
		}
	}()
	out, err := r.run(ctx, "db2", query)
	if err != nil {
		return db2.QueryResult{}, err
	}
	return db2.ParseQuery(out)
}

// db2ish runs a Db2 command whose success may print no DB20000I (CONNECT): only a Db2 error
// message fails it.
func (r *Restorer) db2ish(ctx context.Context, argv []string) error {
	out, err := r.run(ctx, argv...)
	if err != nil {
		return err
	}
	if code, msg, ok := db2.ParseSQLCode(out); ok && !strings.HasSuffix(code, "W") && !strings.HasSuffix(code, "I") {
		return fmt.Errorf("%s: %w", strings.Join(argv[1:min(3, len(argv))], " "), &db2.Error{Class: db2.Classify(code), Code: code, Msg: msg})
	}
	return nil
}

// checkArchivedLogs lists the archive of db's logs (when keyguard can: see logchain.ArchiveOf)
// and refuses, naming the gap, a roll-forward from target that needs an archived log file
// that is missing: from the image's first log (after its last when the image carries its logs)
// up to the log holding pointInTime (Db2's archive log history), or to the end of the logs. It
// returns a note on what was checked, or why nothing was.
func (r *Restorer) checkArchivedLogs(ctx context.Context, db config.Database, target catalog.Entry, withLogs bool, pointInTime time.Time) (string, error) {
	first, err := logchain.ParseName(target.LogRange.First)
	if err != nil {
		return "archived logs not checked: image " + target.Name() + " does not record its log range", nil
	}
	if last, err := logchain.ParseName(target.LogRange.Last); withLogs && err == nil {
		first = last + 1 // the image carries its own logs
	}
	out, err := r.run(ctx, "db2", "get", "db", "cfg", "for", db.Alias)
	if err != nil {
		return "", err
	}
	cfg, err := db2.ParseDBConfig(out)
	if err != nil {
		return "archived logs not checked: " + err.Error(), nil
	}
	lister, why, ok := logchain.ArchiveOf(db, cfg, r.Archive)
	if !ok {
		return "archived logs not checked: " + why, nil
	}
	end := -1 // the last archived log the roll-forward reads
	if fa, err := logchain.ParseName(cfg.FirstActiveLog); err == nil {
		end = fa - 1
	}
	if !pointInTime.IsZero() {
		if out, err := r.run(ctx, "db2", "list", "history", "archive", "log", "all", "for", db.Alias); err == nil {
			if h, err := db2.ParseHistory(out); err == nil {
				if n, ok := archivedThrough(h, pointInTime); ok && (end < 0 || n < end) {
					end = n
				}
			}
		}
	}
	files, err := lister.List(ctx)
	switch {
	case errors.Is(err, logchain.ErrNoArchive):
		return "archived logs not checked: " + err.Error(), nil
	case err != nil:
		return "", fmt.Errorf("list archived logs of %s: %w", db.Name, err)
	}
	rep := logchain.Verify(files, logchain.Need{From: first, FirstActive: end + 1, Chain: -1})
	if end < 0 {
		end = rep.Newest
	}
	if end < first {
		return "no archived log needed", nil
	}
	to := "the end of the logs"
	if !pointInTime.IsZero() {
		to = pointInTime.UTC().Format(time.RFC3339)
	}
	if g, ok := rep.FirstMissing(first, end); ok {
		return "", fmt.Errorf("%w: the roll-forward from image %s to %s needs archived logs %s to %s, and %s is missing from the archive %s",
			ErrRefused, target.Name(), to, logchain.Name(first), logchain.Name(end), strings.TrimSuffix(g.String(), " "+logchain.Missing), lister)
	}
	return fmt.Sprintf("archived logs %s to %s present in %s", logchain.Name(first), logchain.Name(end), lister), nil
}

// archivedThrough returns the number of the first archived log whose records reach t (End
// Time at or after t), from LIST HISTORY ARCHIVE LOG.
func archivedThrough(h db2.History, t time.Time) (int, bool) {
	best, ok := 0, false
	for _, x := range h.Entries {
		if x.Op != db2.OpArchiveLog || x.Failed() || x.End == "" {
			continue
		}
		end, err := time.Parse(db2.TimestampLayout, x.End)
		n, nerr := logchain.ParseName(x.FirstLog)
		if err != nil || nerr != nil || end.Before(t.UTC().Truncate(time.Second)) {
			continue
		}
		if !ok || n < best {
			best, ok = n, true
		}
	}
	return best, ok
}
