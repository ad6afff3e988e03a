// Package statetest is the contract suite of state.Store, including Update over it: run in unit
// tests against the in-memory stores and in test/integration against COS (versitygw). Run never
// skips.
package statetest
