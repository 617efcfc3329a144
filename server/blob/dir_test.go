package blob_test

import (
	"testing"

	"github.com/tabreduce/tabreduce/server/blob"
	"github.com/tabreduce/tabreduce/server/blob/blobtest"
)

func TestDirConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		d, err := blob.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}
