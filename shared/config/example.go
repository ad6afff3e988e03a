package config

import _ "embed"

// Example is the sample fleet policy of a deployment shipped with keyguard
// (fleet.example.yaml): it loads as a deployed function loads a policy.
//
//go:embed fleet.example.yaml
var Example []byte
