package upload

// SetMaxParts lowers the part limit for a test and returns the function that restores it.
func SetMaxParts(n int64) (restore func()) {
	old := maxParts
	maxParts = n
	return func() { maxParts = old }
}
