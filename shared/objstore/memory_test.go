package objstore_test

import (
	"testing"

	"github.com/keyguard-dev/keyguard/shared/objstore"
	"github.com/keyguard-dev/keyguard/shared/objstore/objstoretest"
)

func TestMemoryContract(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return objstore.NewMemory() })
}
