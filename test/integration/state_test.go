package integration

import (
	"context"
	"fmt"
	"testing"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/state"
	"github.com/keyguard-dev/keyguard/shared/state/statetest"
	"github.com/keyguard-dev/keyguard/test/s3server"
)

// TestStateContractVersitygw runs the state.Store contract and Update over COS against
// versitygw through ibm-cos-sdk-go, including 32 writers × 50 increments of one state object.
func TestStateContractVersitygw(t *testing.T) {
	srv := s3server.Start(t)
	client := srv.Client(t)
	statetest.Run(t, func(t *testing.T) state.Store {
		return state.NewObjectStore(objstore.NewCOS(client, srv.Bucket, uniquePrefix()))
	})
}

// BenchmarkStateUpdateVersitygw measures one uncontended Update (GET + conditional PUT) against
// versitygw on loopback.
func BenchmarkStateUpdateVersitygw(b *testing.B) {
	srv := s3server.Start(b)
	s := state.NewObjectStore(objstore.NewCOS(srv.Client(b), srv.Bucket, "bench"))
	ctx := context.Background()
	init := func() *state.State {
		st := state.New("db1", "crn:k")
		for i := range state.MaxSeen {
			st.MarkSeen(fmt.Sprintf("source/event-%04d", i))
		}
		return st
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := state.Update(ctx, s, "db1", init, func(st *state.State) error {
			st.ConsecutiveFailures++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
