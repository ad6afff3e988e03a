package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/keyguard-dev/keyguard/shared/config"
	"github.com/keyguard-dev/keyguard/shared/objstore"
)

func newFleetShowCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the fleet policy in use (the object in the bucket, or KEYGUARD_FLEET_FILE)",
		Long: `fleet show prints the policy text as stored, to edit and push back; -json prints a summary of
its databases.`,
		Example: "  keyguard fleet show > fleet.yaml",
		Args:    args(0, 0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := a.ops(needStore)
			if err != nil {
				return err
			}
			return o.fleetShow(cmd.Context(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON summary of the databases")
	return cmd
}

func (o *ops) fleetShow(ctx context.Context, asJSON bool) error {
	var body []byte
	var err error
	if o.fleetFile != "" {
		body, err = os.ReadFile(o.fleetFile)
	} else if body, _, err = o.objs.Get(ctx, o.fleetKey); errors.Is(err, objstore.ErrNotFound) {
		_, err = o.fleet.Fleet(ctx) // says where it looked and what to do
	}
	if err != nil {
		return err
	}
	if !asJSON {
		_, err := o.out.Write(body)
		return err
	}
	f, err := config.Load(body)
	if err != nil {
		return fmt.Errorf("the policy in use does not load: %w", err)
	}
	return o.json(summarize(f))
}
