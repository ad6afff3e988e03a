package events

import (
	"embed"
	"strings"
)

// schemaFS holds one JSON Schema (draft 2020-12) per keyguard payload type, named after the type
// without Prefix: schemas/backup.completed.schema.json for dev.keyguard.backup.completed.
//
//go:embed schemas/*.schema.json
var schemaFS embed.FS

// Schema returns the JSON Schema of the data of keyguard event type typ (e.g.
// "dev.keyguard.backup.completed"), and false when typ has no schema. The schema is the wire
// contract; DecodeData additionally checks the cross-field rules a schema cannot express (an end
// not before its start, a lease after its start, a new key version unlike the old).
func Schema(typ string) ([]byte, bool) {
	if _, ok := newPayload(typ); !ok {
		return nil, false
	}
	b, err := schemaFS.ReadFile("schemas/" + strings.TrimPrefix(typ, Prefix) + ".schema.json")
	if err != nil {
		return nil, false
	}
	return b, true
}
