package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/shared/catalog"
)

func newBackupShowCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show <db> <image|latest>",
		Short: "One backup in full, with its restore chain",
		Example: "  keyguard backup show proddb latest\n" +
			"  keyguard backup show proddb 20261124020000 -json",
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
			return o.backupShow(cmd.Context(), args[0], args[1], asJSON)
		},
		ValidArgsFunction: completeDatabases(a),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// showJSON is the -json form of backup show.
type showJSON struct {
	Entry      catalog.Entry `json:"entry"`
	Chain      []string      `json:"chain,omitempty"`
	ChainError string        `json:"chain_error,omitempty"`
}

// entries lists db's catalog; an empty catalog is an error naming the database.
func (o *ops) entries(ctx context.Context, db string) ([]catalog.Entry, error) {
	list, err := catalog.New(o.objs).List(ctx, db)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("no backups of %s in the catalog", db)
	}
	return list, nil
}

// image finds the backup ts ("latest": the newest not discarded) in list.
func image(list []catalog.Entry, db, ts string) (catalog.Entry, error) {
	if ts == latest {
		if e, ok := newestUsable(list); ok {
			return e, nil
		}
		return catalog.Entry{}, fmt.Errorf("no usable backup of %s: every image in the catalog was discarded", db)
	}
	e, ok := find(list, ts)
	if !ok {
		return catalog.Entry{}, fmt.Errorf("backup %s of %s: %w (keyguard backup list %s shows the images)", ts, db, catalog.ErrNotFound, db)
	}
	return e, nil
}

func (o *ops) backupShow(ctx context.Context, db, ts string, asJSON bool) error {
	list, err := o.entries(ctx, db)
	if err != nil {
		return err
	}
	e, err := image(list, db, ts)
	if err != nil {
		return err
	}
	chain, cerr := catalog.Chain(list, e.ImageTimestamp)
	if asJSON {
		v := showJSON{Entry: e}
		for _, c := range chain {
			v.Chain = append(v.Chain, c.Name())
		}
		if cerr != nil {
			v.ChainError = cerr.Error()
		}
		return o.json(v)
	}
	tw := o.table()
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("database", e.Database)
	row("timestamp", e.ImageTimestamp)
	row("type", string(e.Type))
	row("mode", string(e.Mode))
	row("scope", string(e.Scope))
	if len(e.Tablespaces) > 0 {
		row("tablespaces", strings.Join(e.Tablespaces, ", "))
	}
	row("parent", orDash(e.ParentTimestamp))
	row("started", utc(e.StartedAt))
	row("ended", utc(e.EndedAt))
	row("size", fmt.Sprintf("%s (%d bytes)", size(e.SizeBytes), e.SizeBytes))
	if e.LogRange.First != "" {
		row("logs", e.LogRange.First+" to "+orDash(e.LogRange.Last))
	}
	row("key", e.KeyCRN)
	row("key version", orDash(e.KeyVersion))
	v := e.Verification
	switch {
	case v.Verified:
		row("verified", fmt.Sprintf("yes, by %s at %s", v.Tool, utc(v.At)))
	default:
		row("verified", "no")
	}
	if v.Detail != "" {
		row("verification", v.Detail)
	}
	row("run", e.RunID)
	row("executor", e.Executor)
	for i, img := range e.Images {
		row(fmt.Sprintf("image %d", i+1), object(img))
	}
	if e.Keystore != nil {
		row("keystore", object(*e.Keystore))
	}
	for _, n := range e.Notes {
		row("note", n)
	}
	if d := e.Discarded; d != nil {
		row("DISCARDED", fmt.Sprintf("at %s: %s", utc(d.At), d.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if cerr != nil {
		_, err := fmt.Fprintf(o.out, "\nrestore chain: BROKEN: %v\n", cerr)
		return err
	}
	fmt.Fprintf(o.out, "\nrestore chain (%d image%s, in restore order):\n", len(chain), plural(len(chain)))
	tw = o.table()
	for i, c := range chain {
		fmt.Fprintf(tw, "  %d.\t%s\t%s\t%s\tkey version %s\n", i+1, c.ImageTimestamp, c.Type, c.Mode, short(c.KeyVersion))
	}
	return tw.Flush()
}
