package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

func newFleetPushCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "push FILE",
		Short: "Validate a fleet policy file, then store it as the policy the functions read",
		Long: `fleet push validates FILE as fleet validate does, then writes it to the policy object
(KEYGUARD_FLEET_KEY, default config/fleet.yaml) with a conditional write: create-only when
there is none, otherwise replace exactly the version it read (If-Match), so that two people
pushing at once cannot overwrite each other unseen (the second is told to run again). It says
which databases the push adds and removes. The functions pick the new policy up within a
minute.`,
		Example: "  keyguard fleet push fleet.yaml",
		Args:    args(1, 1, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, f, err := loadFleetFile(args[0])
			if err != nil {
				return err
			}
			o, err := a.ops(needStore)
			if err != nil {
				return err
			}
			return o.fleetPush(cmd.Context(), args[0], body, f)
		},
	}
}

func (o *ops) fleetPush(ctx context.Context, file string, body []byte, f *config.Fleet) error {
	key := o.fleetKey
	where := fmt.Sprintf("%s in bucket %s", key, o.bucket)
	old, etag, err := o.objs.Get(ctx, key)
	cond := objstore.Cond{IfMatch: etag}
	var before *config.Fleet
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		cond = objstore.Cond{IfNoneMatch: true}
	case err != nil:
		return fmt.Errorf("read the current policy %s: %w", where, err)
	case bytes.Equal(old, body):
		_, err := fmt.Fprintf(o.out, "%s already holds %s: nothing to push\n", where, file)
		return err
	default:
		before, _ = config.Load(old) // an invalid stored policy is simply replaced
	}
	if _, err := o.objs.Put(ctx, key, body, cond); err != nil {
		if errors.Is(err, objstore.ErrPrecondition) || (errors.Is(err, objstore.ErrNotFound) && cond.IfMatch != "") {
			return fmt.Errorf("%s changed while pushing (someone else pushed): nothing written; run fleet push again", where)
		}
		return fmt.Errorf("write %s: %w", where, err)
	}
	verb := "replaced"
	if cond.IfNoneMatch {
		verb = "created"
	}
	fmt.Fprintf(o.out, "%s %s from %s: %d database%s\n", verb, where, file, len(f.Databases), plural(len(f.Databases)))
	was, now := names(before), names(f)
	var added, removed []string
	for _, n := range now {
		if !slices.Contains(was, n) {
			added = append(added, n)
		}
	}
	for _, n := range was {
		if !slices.Contains(now, n) {
			removed = append(removed, n)
		}
	}
	if before != nil && len(added) > 0 {
		fmt.Fprintf(o.out, "  added: %s\n", strings.Join(added, ", "))
	}
	if len(removed) > 0 {
		fmt.Fprintf(o.out, "  removed: %s (their state and backups stay; prune or delete them by hand)\n", strings.Join(removed, ", "))
	}
	if o.fleetFile != "" {
		fmt.Fprintf(o.out, "note: %s is set, so this command reads %s, not the object it pushed\n", config.EnvFleetFile, o.fleetFile)
	}
	_, err = fmt.Fprintln(o.out, "the functions read it within a minute")
	return err
}
