package config

import _ "embed"

// Example is the sample fleet policy shipped with keyguard (fleet.example.yaml); the dev stack
// runs on it.
//
//go:embed fleet.example.yaml
var Example []byte
