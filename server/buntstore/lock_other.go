//go:build !unix

package buntstore

import "os"

// lockFile does nothing where flock is missing: two servers on one
// directory are the operator's to avoid there.
func lockFile(*os.File) error { return nil }
