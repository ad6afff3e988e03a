// Package config is keyguard's fleet policy: the YAML file (config/fleet.yaml in COS, a local
// file in the dev stack) that names each database, its key, schedules, rotation, retry and alert
// settings. Load parses it strictly, merges defaults into every database, and validates
// everything at once, listing every problem in one error. It also names the environment
// variables and event routes that the functions and the Terraform share (env.go, routes.go).
// It never reads the environment itself.
package config
