// Package runtime turns a deployed function's environment into its clients: it parses the
// variables named in config (given a getenv function; it never reads the environment itself) into
// a typed, defaulted and validated Config, and builds the COS object store, the Event
// Notifications sender, the authenticator (API key or Code Engine trusted profile) and the fleet
// policy source (a local file, or config/fleet.yaml in COS re-read at most once a minute).
package runtime
