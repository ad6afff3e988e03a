package logchain

import (
	"context"
	"fmt"
	"time"
)

// Options of Check.
type Options struct {
	Database string
	// Method is the archive method as Db2 reports it (LOGARCHMETH1).
	Method string
	// AutoDelete is Db2's AUTO_DEL_REC_OBJ=ON: Db2 deletes archived logs with its recovery
	// history, and keyguard deletes none.
	AutoDelete bool
	// Prune deletes the files no kept chain or point-in-time window needs (Removable), when
	// AutoDelete is off and the chain is not broken (a broken chain is reported, and nothing
	// is deleted around it until an operator has looked).
	Prune bool
	Now   time.Time
}

// Check lists the archive, verifies the chain against need and, with opts.Prune, removes what
// Removable allows. A listing that fails is a report whose Error says so, and the error.
func Check(ctx context.Context, l Lister, need Need, opts Options) (Report, error) {
	r := Report{Database: opts.Database, CheckedAt: opts.Now.UTC(), Archive: l.String(), Method: opts.Method,
		From: -1, FirstActive: need.FirstActive, Oldest: -1, Newest: -1, Deleter: "keyguard"}
	if opts.AutoDelete {
		r.Deleter = "db2"
	}
	files, err := l.List(ctx)
	if err != nil {
		r.Error = err.Error()
		return r, fmt.Errorf("log chain of %s: %w", opts.Database, err)
	}
	v := Verify(files, need)
	v.Database, v.CheckedAt, v.Archive, v.Method, v.Deleter = r.Database, r.CheckedAt, r.Archive, r.Method, r.Deleter
	if opts.Prune && !opts.AutoDelete && !v.Broken {
		if rm := Removable(files, need, false); len(rm) > 0 {
			if err := l.Remove(ctx, rm); err != nil {
				return v, fmt.Errorf("log retention of %s: %w", opts.Database, err)
			}
			v.Deleted = len(rm)
			v = recount(v, files, rm, need)
		}
	}
	return v, nil
}

// recount is the report after the removal of rm from files.
func recount(r Report, files, rm []File, need Need) Report {
	gone := make(map[string]bool, len(rm))
	for _, f := range rm {
		gone[f.Key] = true
	}
	left := make([]File, 0, len(files)-len(rm))
	for _, f := range files {
		if !gone[f.Key] {
			left = append(left, f)
		}
	}
	v := Verify(left, need)
	v.Database, v.CheckedAt, v.Archive, v.Method, v.Deleter, v.Deleted = r.Database, r.CheckedAt, r.Archive, r.Method, r.Deleter, r.Deleted
	return v
}
