// Package hygiene holds checks on the repository as a whole: what the deployed binaries link.
package hygiene
