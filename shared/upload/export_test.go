package upload

import "testing"

// SetMaxParts lowers the part limit for a test and returns the function that restores it.
func SetMaxParts(n int64) (restore func()) {
	old := maxParts
	maxParts = n
	return func() { maxParts = old }
}

// HashFirst makes UploadFile hash the whole file before sending any part, until restore is
// called.
func HashFirst(testing.TB) (restore func()) {
	hashFirst = true
	return func() { hashFirst = false }
}
