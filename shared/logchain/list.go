package logchain

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/keyguard-dev/keyguard/shared/objstore"
)

// Lister lists an archive's log files.
type Lister interface {
	// List returns every archived log file (any order) with its key, size and time written.
	// Objects that are not log files are skipped. An archive directory that does not exist
	// (not mounted where the caller runs) is an error wrapping ErrNoArchive; an empty COS prefix
	// is an empty list. Idempotent; safe concurrently.
	List(ctx context.Context) ([]File, error)
	// Remove deletes the files (by Key). A file already gone is not an error. Idempotent.
	Remove(ctx context.Context, files []File) error
	// String says where the archive is.
	String() string
}

// ErrNoArchive: the archive directory is not there (not reachable from where keyguard runs).
var ErrNoArchive = errors.New("log archive directory not found")

// Dir lists an archive directory the runner can read (LOGARCHMETH1 DISK:<path>): Root is
// <path>/<instance>/<DATABASE>, under which Db2 writes NODEnnnn/LOGSTREAMnnnn/Cnnnnnnn/.
type Dir struct{ Root string }

var _ Lister = Dir{}

func (d Dir) String() string { return d.Root }

// List walks Root.
func (d Dir) List(ctx context.Context) ([]File, error) {
	var out []File
	err := filepath.WalkDir(d.Root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == d.Root {
				return ErrNoArchive
			}
			return err
		}
		if e.IsDir() {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(d.Root, p)
		f, perr := ParsePath(filepath.ToSlash(rel))
		if perr != nil {
			return nil // not a log file
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		f.Key, f.Size, f.Modified = p, info.Size(), info.ModTime().UTC()
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list archived logs in %s: %w", d.Root, err)
	}
	return out, nil
}

// Remove deletes the files.
func (d Dir) Remove(ctx context.Context, files []File) error {
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !strings.HasPrefix(f.Key, d.Root+string(filepath.Separator)) {
			return fmt.Errorf("remove archived log %s: not under %s", f.Key, d.Root)
		}
		if err := os.Remove(f.Key); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove archived log: %w", err)
		}
	}
	return nil
}

// ObjectStore is what Objects needs of a store (objstore.Store has it).
type ObjectStore interface {
	// List returns the objects whose key starts with prefix, sorted by key, or an empty list.
	List(ctx context.Context, prefix string) ([]objstore.Info, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Objects lists an archive in COS (LOGARCHMETH1 DB2REMOTE://<alias>//<path>, whose storage
// alias points at this bucket): Prefix is the key prefix under which Db2 writes
// <instance>/<DATABASE>/NODEnnnn/LOGSTREAMnnnn/Cnnnnnnn/ (or that directory itself).
type Objects struct {
	Store  ObjectStore
	Prefix string
}

var _ Lister = Objects{}

func (o Objects) String() string { return "cos:" + o.Prefix }

// List lists Prefix.
func (o Objects) List(ctx context.Context) ([]File, error) {
	infos, err := o.Store.List(ctx, o.Prefix)
	if err != nil {
		return nil, fmt.Errorf("list archived logs under %s: %w", o.Prefix, err)
	}
	out := make([]File, 0, len(infos))
	for _, in := range infos {
		f, err := ParsePath(strings.TrimPrefix(in.Key, o.Prefix))
		if err != nil {
			continue
		}
		f.Key, f.Size, f.Modified = in.Key, in.Size, in.LastModified.UTC()
		out = append(out, f)
	}
	return out, nil
}

// Remove deletes the files' objects (DeleteObjects when the store has it).
func (o Objects) Remove(ctx context.Context, files []File) error {
	keys := make([]string, 0, len(files))
	for _, f := range files {
		if !strings.HasPrefix(f.Key, o.Prefix) {
			return fmt.Errorf("remove archived log %s: not under %s", f.Key, o.Prefix)
		}
		keys = append(keys, f.Key)
	}
	if bd, ok := o.Store.(objstore.BatchDeleter); ok {
		for len(keys) > 0 {
			n := min(len(keys), objstore.MaxBatchDelete)
			if err := bd.DeleteMany(ctx, keys[:n]); err != nil {
				return fmt.Errorf("remove archived logs: %w", err)
			}
			keys = keys[n:]
		}
		return nil
	}
	for _, k := range keys {
		if err := o.Store.Delete(ctx, k); err != nil {
			return fmt.Errorf("remove archived log %s: %w", k, err)
		}
	}
	return nil
}

// ReportKey is where a database's report is stored: logchain/<database>.json.
func ReportKey(db string) string { return "logchain/" + db + ".json" }

// MaxReportSize bounds a stored report.
const MaxReportSize = 64 << 10
