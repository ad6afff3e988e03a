package db2

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/keyguard-dev/keyguard/events"
)

// Runner runs one Db2 command line. It is the only way this package runs anything; the runner
// job implements it with os/exec, tests with a function.
type Runner interface {
	// Run runs argv (argv[0] is "db2" or "db2ckbkp"), waits for it to end and returns what it
	// printed (standard output then standard error) and its exit status. A non-zero exit status
	// is not an error: Db2 explains failures in its output, which the caller parses. err is
	// non-nil only when the command could not be started or ctx ended first. Safe for
	// concurrent use when the commands are (Db2 serialises a CLP back-end per parent process).
	Run(ctx context.Context, argv []string) (out string, exit int, err error)
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, argv []string) (string, int, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, argv []string) (string, int, error) {
	return f(ctx, argv)
}

// Inspection is what Inspect observed about a database.
type Inspection struct {
	Config       DBConfig      `json:"config"`
	Applications []Application `json:"applications"`
	// Size is SizeUnknown when the database could not be connected to (backup, rollforward or
	// restore pending).
	Size DBSize `json:"size"`
}

// Inspect reads what PlanBackup needs: the database configuration, its size (connect, CALL
// GET_DBSIZE_INFO, connect reset; skipped when a pending state forbids connections) and the
// connected applications (listed last, after this session's own connection is reset).
func Inspect(ctx context.Context, r Runner, database string) (Inspection, error) {
	if !dbAlias.MatchString(database) {
		return Inspection{}, &Error{Class: events.Permanent, Reason: ReasonInvalidRequest,
			Msg: fmt.Sprintf("database %q is not a Db2 alias", truncate(database))}
	}
	var in Inspection
	out, err := run(ctx, r, "db2", "get", "db", "cfg", "for", database)
	if err != nil {
		return Inspection{}, err
	}
	if in.Config, err = ParseDBConfig(out); err != nil {
		return Inspection{}, fmt.Errorf("db cfg for %s: %w", database, err)
	}
	in.Size = SizeUnknown
	if c := in.Config; !c.BackupPending && !c.RollforwardPending && !c.RestorePending {
		if in.Size, err = dbSize(ctx, r, database); err != nil {
			return Inspection{}, err
		}
	}
	if out, err = run(ctx, r, "db2", "list", "applications", "for", "db", database); err != nil {
		return Inspection{}, err
	}
	if in.Applications, err = ParseApplications(out); err != nil {
		return Inspection{}, fmt.Errorf("list applications for %s: %w", database, err)
	}
	return in, nil
}

func dbSize(ctx context.Context, r Runner, database string) (DBSize, error) {
	out, err := run(ctx, r, "db2", "connect", "to", database)
	if err != nil {
		return DBSize{}, err
	}
	if e := outputError(out); e != nil {
		return DBSize{}, fmt.Errorf("connect to %s: %w", database, e)
	}
	out, err = run(ctx, r, "db2", "CALL GET_DBSIZE_INFO(?, ?, ?, -1)")
	size, perr := ParseDBSize(out)
	// Reset the connection whatever happened, so it never blocks an offline backup.
	rout, rerr := run(ctx, r, "db2", "connect", "reset")
	switch {
	case err != nil:
		return DBSize{}, err
	case perr != nil:
		return DBSize{}, fmt.Errorf("size of %s: %w", database, perr)
	case rerr != nil:
		return DBSize{}, rerr
	}
	if e := outputError(rout); e != nil {
		return DBSize{}, fmt.Errorf("connect reset: %w", e)
	}
	return size, nil
}

// Result is what Execute produced.
type Result struct {
	// Timestamp is the image timestamp Db2 printed.
	Timestamp string `json:"timestamp"`
	// Image is the image file path (Plan.ImagePath), set as soon as the backup succeeded, so a
	// caller can remove a local image that failed verification.
	Image    string       `json:"image"`
	Verified bool         `json:"verified"`
	Check    CheckDetails `json:"check"`
	// Partitions and Images, for a partitioned backup, are the database partitions backed up
	// (ascending) and the path of each one's image, in the same order; Image is the first.
	Partitions []int    `json:"partitions,omitempty"`
	Images     []string `json:"images,omitempty"`
}

// Execute runs the plan's commands, parses the backup timestamp, then verifies the image with
// db2ckbkp. A Db2 failure returns its classified *Error; an image that fails verification
// returns a transient *Error (reason verification-failed: the next attempt writes a new image)
// together with the Result naming the image. log may be nil.
func Execute(ctx context.Context, r Runner, p Plan, log *slog.Logger) (Result, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(p.Commands) == 0 {
		return Result{}, &Error{Class: events.Permanent, Reason: ReasonInvalidRequest, Msg: "plan has no commands"}
	}
	var res Result
	for _, argv := range p.Commands {
		log.Info("db2 command", "database", p.Database, "argv", strings.Join(argv, " "))
		out, err := run(ctx, r, argv...)
		if err != nil {
			return res, err
		}
		if len(argv) > 1 && argv[0] == "db2" && strings.EqualFold(argv[1], "backup") {
			ts, err := ParseBackupResult(out)
			if err != nil {
				log.Warn("db2 backup failed", "database", p.Database, "class", ClassOf(err), "err", err)
				return res, fmt.Errorf("backup %s: %w", p.Database, err)
			}
			res.Timestamp, res.Image = ts, p.ImagePath(ts)
			if p.Partitioned {
				parts, err := ParseBackupPartitions(out)
				if err != nil {
					return res, fmt.Errorf("backup %s: %w", p.Database, err)
				}
				res.Partitions, res.Images = parts, nil
				for _, n := range parts {
					res.Images = append(res.Images, p.PartitionImagePath(ts, n))
				}
				res.Image = res.Images[0]
			}
			log.Info("db2 backup done", "database", p.Database, "timestamp", ts, "image", res.Image, "partitions", res.Partitions)
			continue
		}
		if e := outputError(out); e != nil {
			return res, fmt.Errorf("%s: %w", strings.Join(argv, " "), e)
		}
	}
	if res.Timestamp == "" {
		return res, &Error{Class: events.Permanent, Reason: ReasonInvalidRequest, Msg: "plan has no backup command"}
	}
	images := res.Images
	if len(images) == 0 {
		images = []string{res.Image}
	}
	// Every image is verified (one per partition of a partitioned backup).
	for _, img := range images {
		out, err := run(ctx, r, "db2ckbkp", img)
		if err != nil {
			return res, err
		}
		ok, details, err := ParseCheckBackup(out)
		res.Check = details
		if err != nil {
			return res, fmt.Errorf("verify %s: %w", img, err)
		}
		if !ok {
			msg := fmt.Sprintf("db2ckbkp found %d error(s) in %s", max(details.ErrorsDetected, len(details.Errors)), img)
			if len(details.Errors) > 0 {
				msg += ": " + details.Errors[0]
			}
			log.Warn("db2 image verification failed", "database", p.Database, "image", img, "errors", details.Errors)
			return res, &Error{Class: events.Transient, Reason: ReasonVerificationFailed, Msg: msg}
		}
		log.Info("db2 image verified", "database", p.Database, "image", img, "buffers", details.Buffers)
	}
	res.Verified = true
	return res, nil
}

func run(ctx context.Context, r Runner, argv ...string) (string, error) {
	out, _, err := r.Run(ctx, argv)
	if err != nil {
		return "", fmt.Errorf("run %s: %w", strings.Join(argv, " "), err)
	}
	return out, nil
}
