package catalog

// Internals the external tests reach.
type (
	IndexHead     = head
	IndexMark     = mark
	IndexBaseRef  = baseRef
	IndexRetained = retained
)

var (
	EncodeIndexHead     = encodeHead
	DecodeIndexHead     = decodeHead
	EncodeIndexBase     = encodeBase
	DecodeIndexBaseText = decodeBaseText
	ParseIndexBaseText  = parseBaseText
)

// LimitBaseText lowers the decompressed size a base may have until the test ends.
func LimitBaseText(t interface{ Cleanup(func()) }, n int) {
	old := baseTextLimit
	baseTextLimit = n
	t.Cleanup(func() { baseTextLimit = old })
}
