package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/shared/catalog"
	"github.com/keyguard-dev/keyguard/shared/restore"
)

func newBackupFetchCmd(a *app) *cobra.Command {
	var (
		dir   string
		chain bool
	)
	cmd := &cobra.Command{
		Use:   "fetch <db> <image|latest>",
		Short: "Download a backup's image files, checking each against the SHA-256 in the catalog",
		Long: `backup fetch downloads the image files keyguard stored for a backup into a directory (the
current one by default), under the names Db2 gave them, so that RESTORE DATABASE ... FROM
<dir> TAKEN AT <timestamp> can read them. Each file's size and SHA-256 are checked against the
catalog as it arrives; a file that does not match is removed and the command fails. With -chain
it fetches every image of the backup's restore chain, in restore order. It never overwrites a
file.

A backup kept by a service (Db2 on Cloud) has no files in the bucket: restore it through the
service. A sealed keystore copy is not fetched: the restore job unseals it with Key Protect.

Progress goes to standard error: a bar on a terminal, a line every 10 s otherwise.`,
		Example: "  keyguard backup fetch proddb latest -o /db2restore\n  keyguard backup fetch proddb 20261124140000 -chain",
		Args: func(cmd *cobra.Command, a []string) error {
			if err := args(2, 2, 1)(cmd, a); err != nil {
				return err
			}
			return imageArg(cmd, a[1], true)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.ops(needStore)
			if err != nil {
				return err
			}
			return o.backupFetch(cmd.Context(), args[0], args[1], dir, chain)
		},
		ValidArgsFunction: completeDatabases(a),
	}
	cmd.Flags().StringVarP(&dir, "output", "o", ".", "directory to write the image files to (created if missing)")
	cmd.Flags().BoolVar(&chain, "chain", false, "fetch the whole restore chain of the image, in restore order")
	return cmd
}

func (o *ops) backupFetch(ctx context.Context, db, ts, dir string, chain bool) error {
	list, err := o.entries(ctx, db)
	if err != nil {
		return err
	}
	e, err := image(list, db, ts)
	if err != nil {
		return err
	}
	targets := []catalog.Entry{e}
	if chain {
		if targets, err = catalog.Chain(list, e.ImageTimestamp); err != nil {
			return fmt.Errorf("restore chain of %s: %w", e.Name(), err)
		}
	}
	type file struct {
		obj  catalog.Object
		path string
	}
	var plan []file
	var external []string
	seen := map[string]bool{}
	for _, t := range targets {
		for _, img := range t.Images {
			if img.External() {
				external = append(external, img.Key)
				continue
			}
			p := filepath.Join(dir, path.Base(img.Key))
			if seen[p] {
				return fmt.Errorf("two image files would both be written to %s", p)
			}
			seen[p] = true
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s exists: fetch never overwrites a file (remove it, or choose another directory with -o)", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			plan = append(plan, file{img, p})
		}
	}
	if len(plan) == 0 {
		where := "nowhere"
		if len(external) > 0 {
			where = external[0]
		}
		return fmt.Errorf("backup %s of %s has no file in the bucket: it is kept by %s at %s; restore it through the service",
			e.Name(), db, orText(e.Executor, "its service"), where)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var total int64
	for _, f := range plan {
		b := startBar(o.errOut, o.tty, path.Base(f.obj.Key), f.obj.Size, o.now)
		err := restore.DownloadFile(ctx, barDownloader{o.download, b}, f.obj, f.path)
		b.finish()
		if err != nil {
			return err
		}
		total += f.obj.Size
		fmt.Fprintf(o.out, "fetched %s -> %s (%s, sha256 %s verified)\n", f.obj.Key, f.path, size(f.obj.Size), f.obj.SHA256[:12])
	}
	for _, x := range external {
		fmt.Fprintf(o.out, "not fetched: %s is kept by its service\n", x)
	}
	for _, t := range targets {
		if t.Keystore != nil {
			fmt.Fprintf(o.out, "not fetched: the keystore copy of %s (%s) is sealed with Key Protect; the restore job unseals it\n", t.Name(), t.Keystore.Key)
		}
	}
	_, err = fmt.Fprintf(o.out, "%d file%s, %s, in %s; keyguard plan-restore %s gives the RESTORE and ROLLFORWARD commands\n",
		len(plan), plural(len(plan)), size(total), dir, db)
	return err
}
